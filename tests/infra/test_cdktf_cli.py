"""The platform engineer's path with the real CDKTF CLI (npm cdktf-cli 0.21.0) against the AWS
emulator: exactly the README's command block, run line by line from the repository root.

deploy '*' -> boto3 checks of the same security properties as the mlctl apply test -> the state is
the one mlctl reads (same S3 objects, and mlctl's own terraform run sees no drift) -> cdktf diff of
every stack shows no change -> destroy '*' leaves nothing of ours.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from blueprints import load_environment
from control_plane.emulator.aws import client_kwargs
from control_plane.infra import emulator_quirks, lifecycle
from control_plane.infra.synth import read_synthesized
from tests.infra.aws_checks import check_deployed, check_gone
from tests.synthesis import REPO

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


@pytest.mark.slow
@pytest.mark.timeout(2700)  # five stacks applied, diffed and destroyed by the CLI: 10-20 min on 2 shared cores
def test_cdktf_cli_deploy_diff_destroy(aws_emulator: str, terraform_ready: None) -> None:
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
    deployed = False
    try:
        out = _run(env_lines, deploy_cmd)
        deployed = True
        assert out.count("Apply complete!") == len(LAYERS), out[-3000:]
        check_deployed(clients, env.name)

        # One state for both tools: the objects cdktf wrote are the ones mlctl's stacks name, SSE-KMS
        # with the bootstrap's state key, and mlctl's own terraform run finds nothing to change.
        stacks = read_synthesized(CDKTF_OUT)
        assert [s.name for s in stacks] == [f"{env.name}-{layer}" for layer in LAYERS]
        alias = f"alias/{env.name}-tfstate"
        state_key = {alias, clients["kms"].describe_key(KeyId=alias)["KeyMetadata"]["Arn"]}  # moto echoes the alias
        for layer in LAYERS:
            head = clients["s3"].head_object(Bucket=env.state.bucket,
                                             Key=f"{env.state.key_prefix}/{env.name}/{layer}.tfstate")
            assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] in state_key
        registry = next(s for s in stacks if s.layer == "registry")
        ws = lifecycle.Workspace(stacks=[registry], environments={env.name: env})
        assert lifecycle.drift(ws) == []

        out = _run(env_lines, diff_cmd)
        assert out.count("No changes.") == len(LAYERS), out[-3000:]
        assert "Plan:" not in out
    finally:
        if deployed or CDKTF_OUT.joinpath("manifest.json").exists():
            out = _run(env_lines, destroy_cmd)
            assert out.count("Destroy complete!") == len(LAYERS), out[-3000:]
            # moto keeps a trail the provider deleted by ARN (docs/infrastructure.md); mlctl's destroy
            # sweeps it, a bare `cdktf destroy` cannot.
            for stack in read_synthesized(CDKTF_OUT):
                emulator_quirks.sweep_destroyed_trails(env, stack)
    check_gone(clients, env.name)
