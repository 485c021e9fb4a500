"""One deployment of blueprints/uae-local.yaml on the AWS emulator (moto server), made and
unmade by both tools that share its state: mlctl's own terraform runs and the real CDKTF CLI (npm
cdktf-cli 0.21.0) running exactly the README's command block, line by line from the repository root.

Each tool creates, changes and destroys part of it, so each is shown doing real work, and each
reads what the other wrote (one state, not two copies of it):

bootstrap (README, then idempotent) -> mlctl plans before anything exists (the second stack waits
for the first's outputs) -> mlctl applies security and network -> cdktf deploy '*' finds those two
unchanged and creates the rest -> boto3 checks of the security properties -> the state objects are
SSE-KMS -> mlctl's drift is clean on every stack, then names a manual change -> mlctl apply repairs
it -> cdktf diff of every stack shows no change -> mlctl destroys audit and cluster -> cdktf destroy
'*' removes the rest -> nothing of ours is left.

One deployment for both tools instead of one each: applying and destroying all five stacks is most
of this test's time (two such tests took 18 of the suite's 59 minutes).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from blueprints import load_environment
from control_plane.emulator.aws import client_kwargs
from control_plane.infra import emulator_quirks, lifecycle
from control_plane.infra.bootstrap import bootstrap
from control_plane.infra.synth import read_synthesized
from tests.cli_runner import run_mlctl
from tests.conftest import moto_server, point_at_emulator
from tests.infra.aws_checks import check_deployed, check_gone
from tests.synthesis import REPO, Synthesis, Synthesizer

BLUEPRINT = REPO / "blueprints" / "uae-local.yaml"
CDKTF_OUT = REPO / "cdktf.out"  # the CLI's default output, as the README runs it
LAYERS = ("security", "network", "registry", "cluster", "audit")


def readme_commands() -> tuple[list[str], list[str]]:
    """The README's cdktf block: (environment lines, commands), comments stripped."""
    text = (REPO / "README.md").read_text()
    found = re.search(r"<!-- cdktf-cli:begin -->\n```bash\n(.*?)```\n<!-- cdktf-cli:end -->", text, re.S)
    assert found, "README.md lost its <!-- cdktf-cli:begin/end --> block"
    lines = [re.sub(r"\s+#\s.*$", "", ln).strip() for ln in found.group(1).splitlines()]
    lines = [ln for ln in lines if ln]
    env = [ln for ln in lines if ln.startswith(("source ", "export "))]
    return env, [ln for ln in lines if ln not in env]


def test_readme_block_is_the_platform_path() -> None:
    env, commands = readme_commands()
    assert env == ["source scripts/cdktf-env.sh", "export BLUEPRINT=blueprints/uae-local.yaml"]
    def shape(command: str) -> list[str]:  # `mlctl --as pat infra ...`: who acts is not the shape
        words = command.split()
        return (words[:1] + words[3:5] if words[1:2] == ["--as"] else words[0:3])

    assert commands[0].startswith("mlctl --as pat ")  # infra.bootstrap: platform-admin (rbac.rego)
    assert [shape(c) for c in commands] == [
        ["mlctl", "infra", "bootstrap"], ["npx", "cdktf", "deploy"], ["for", "layer", "in"],
        ["npx", "cdktf", "destroy"],
    ]
    assert all("--skip-provider-lock" in c for c in commands[1:])  # else: terraform providers lock, online


def _run(env_lines: list[str], command: str) -> str:
    script = "set -euo pipefail\n" + "\n".join([*env_lines, command]) + "\n"
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # `mlctl` of this checkout
    env.setdefault("PYTHONPATH", str(REPO))
    env.setdefault("MLCTL_ROLES_FILE", str(REPO / "policies" / "roles.example.yaml"))  # `--as pat`: platform-admin
    env.pop("TF_CLI_CONFIG_FILE", None)  # scripts/cdktf-env.sh must provide it
    proc = subprocess.run(["bash", "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                          check=False, timeout=1500)
    out = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", proc.stdout + proc.stderr)
    assert proc.returncode == 0, f"`{command}` failed ({proc.returncode}):\n{out[-4000:]}"
    return out


@pytest.fixture()
def fresh_emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A moto server of this test's own: the session's holds what earlier tests in this process
    made there (a KMS alias named like the blueprint's), which terraform would find already exists;
    with tests spread over processes, which of them ran first is not fixed."""
    with moto_server() as endpoint:
        yield point_at_emulator(endpoint, monkeypatch)


@pytest.fixture()
def fresh_synth(fresh_emulator: str, synthesizer: Synthesizer) -> Synthesis:
    """uae-local synthesized against this test's emulator (its providers name the endpoint)."""
    return synthesizer("uae-local", emulator_endpoint=fresh_emulator)


def _mlctl_drift(outdir: Path) -> tuple[int, str, str]:
    proc = run_mlctl("infra", "drift", "--no-synth", "--outdir", str(outdir), "-o", "json")
    assert "Traceback (most recent call last)" not in proc.stderr, proc.stderr[-3000:]
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.slow
# Five stacks planned, applied, diffed and destroyed by two tools: ~8 min on a quiet machine, up to
# twice that on 2 shared cores; the suite's 900 s per-test limit is too close, so it has its own.
@pytest.mark.timeout(2700)
def test_one_deployment_two_tools(fresh_emulator: str, fresh_synth: Synthesis, terraform_ready: None) -> None:
    if not (REPO / "node_modules" / ".bin" / "cdktf").exists() or shutil.which("npx") is None:
        pytest.skip("the CDKTF CLI is not installed: run scripts/setup.sh (npm ci)")
    env_lines, (bootstrap_cmd, deploy_cmd, diff_cmd, destroy_cmd) = readme_commands()
    # From what a fresh checkout has: a checkout that ran this before keeps cdktf.out/stacks/*/.terraform,
    # whose backend names that session's emulator endpoint, and terraform then stops every stack with
    # "Backend configuration changed" (a second `make test` in one checkout failed here).
    shutil.rmtree(CDKTF_OUT, ignore_errors=True)
    env = load_environment(BLUEPRINT)
    clients = {svc: boto3.client(svc, **client_kwargs(env))
               for svc in ("s3", "kms", "ecr", "eks", "ec2", "logs", "cloudtrail", "iam")}
    _run(env_lines, bootstrap_cmd)
    assert bootstrap(env).created_bucket is False  # idempotent: the README's run made it

    ws = lifecycle.workspace(BLUEPRINT, outdir=fresh_synth.outdir, synthesize=False)
    assert [s.name for s in ws.stacks] == [f"{env.name}-{layer}" for layer in LAYERS]
    by_layer = dict(zip(LAYERS, ws.stacks, strict=True))
    def part(*layers: str) -> lifecycle.Workspace:
        return lifecycle.Workspace(stacks=[by_layer[x] for x in layers], environments=ws.environments)

    # Before anything exists: the first stack plans, the next one waits for its inputs.
    planned = lifecycle.plan(part("security", "network"))
    assert planned[0].action == "planned" and planned[0].changes and "to create" in planned[0].detail
    assert planned[1].action == "blocked" and "uae-local-security" in planned[1].detail
    try:
        # mlctl creates the first two (network reads security's outputs from the shared state).
        applied = lifecycle.apply(part("security", "network"))
        assert [r.stack for r in applied] == [f"{env.name}-security", f"{env.name}-network"]

        # cdktf deploys every stack: the two mlctl made are unchanged, the other three are created.
        out = _run(env_lines, deploy_cmd)
        assert out.count("Apply complete!") == len(LAYERS), out[-3000:]
        assert out.count("Apply complete! Resources: 0 added, 0 changed, 0 destroyed.") == 2, out[-3000:]
        check_deployed(clients, env.name)

        # One state for both tools: the objects cdktf wrote are the ones mlctl's stacks name, SSE-KMS
        # with the bootstrap's state key.
        stacks = read_synthesized(CDKTF_OUT)
        assert [s.name for s in stacks] == [f"{env.name}-{layer}" for layer in LAYERS]
        alias = f"alias/{env.name}-tfstate"
        state_key = {alias, clients["kms"].describe_key(KeyId=alias)["KeyMetadata"]["Arn"]}  # moto echoes the alias
        for layer in LAYERS:
            head = clients["s3"].head_object(Bucket=env.state.bucket,
                                             Key=f"{env.state.key_prefix}/{env.name}/{layer}.tfstate")
            assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] in state_key

        # mlctl's drift over every stack, on what cdktf deployed: nothing.
        rc, stdout, stderr = _mlctl_drift(fresh_synth.outdir)
        assert rc == 0, stderr[-3000:]
        assert json.loads(stdout) == {"changes": [], "drift": False}

        # A manual, security-relevant change made behind terraform's back.
        clients["ecr"].put_image_tag_mutability(repositoryName="triton-serving", imageTagMutability="MUTABLE")
        rc, stdout, stderr = _mlctl_drift(fresh_synth.outdir)
        assert rc == 5, stderr[-3000:]
        # Under -o json the error is JSON on stderr (its last line): kind, message and the fix.
        error = json.loads(stderr.strip().splitlines()[-1])["error"]
        assert error["kind"] == "DriftDetected" and "drifted" in error["message"] and error["hint"]
        changes = json.loads(stdout)["changes"]
        repo = [c for c in changes if c["address"].startswith("aws_ecr_repository.registry_ecr-triton-serving")]
        assert repo and "image_tag_mutability" in repo[0]["attributes"]
        assert repo[0]["stack"] == "uae-local-registry"
        assert {c["stack"] for c in changes} == {"uae-local-registry"}

        # mlctl's apply repairs it (a change to what cdktf created), and cdktf then sees no change anywhere.
        lifecycle.apply(part("registry"))
        tags = clients["ecr"].describe_repositories(repositoryNames=["triton-serving"])["repositories"][0]
        assert tags["imageTagMutability"] == "IMMUTABLE"
        out = _run(env_lines, diff_cmd)
        assert out.count("No changes.") == len(LAYERS), out[-3000:]
        assert "Plan:" not in out

        # mlctl destroys the top two layers (and sweeps the emulator's leftover trail itself).
        destroyed = lifecycle.destroy(part("cluster", "audit"))
        assert [r.stack for r in destroyed] == [f"{env.name}-audit", f"{env.name}-cluster"]
    finally:
        if CDKTF_OUT.joinpath("manifest.json").exists():
            # cdktf destroys the rest; on a failure above, everything that is left.
            out = _run(env_lines, destroy_cmd)
            assert out.count("Destroy complete!") == len(LAYERS), out[-3000:]
            # moto keeps a trail the provider deleted by ARN (docs/infrastructure.md); mlctl's destroy
            # sweeps it, a bare `cdktf destroy` cannot.
            for stack in read_synthesized(CDKTF_OUT):
                emulator_quirks.sweep_destroyed_trails(env, stack)
        else:  # cdktf never synthesized: only what mlctl made can exist
            lifecycle.destroy(part("security", "network"))
    check_gone(clients, env.name)
