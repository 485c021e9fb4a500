"""The whole lifecycle of blueprints/uae-local.yaml with real terraform against the AWS emulator
(moto server): bootstrap, apply, inspect with boto3, drift (clean, then after a manual change),
destroy, and check that nothing of ours is left."""

from __future__ import annotations

import json

import boto3
import pytest

from blueprints import load_environment
from control_plane.emulator.aws import client_kwargs
from control_plane.infra import lifecycle
from control_plane.infra.bootstrap import bootstrap
from tests.cli_runner import run_mlctl
from tests.infra.aws_checks import check_deployed, check_gone
from tests.synthesis import REPO, Synthesis

BLUEPRINT = REPO / "blueprints" / "uae-local.yaml"


@pytest.mark.slow
# terraform applies and destroys every uae-local stack twice over (~510 s on a quiet machine, ~830 s
# on a shared one): above the suite's 900 s per-test limit's margin, so this test gets its own.
@pytest.mark.timeout(1800)
def test_apply_inspect_drift_destroy(aws_emulator: str, local_synth: Synthesis, terraform_ready: None) -> None:
    env = load_environment(BLUEPRINT)
    clients = {svc: boto3.client(svc, **client_kwargs(env))
               for svc in ("s3", "kms", "ecr", "eks", "ec2", "logs", "cloudtrail", "iam")}
    bootstrap(env)
    assert bootstrap(env).created_bucket is False  # idempotent
    ws = lifecycle.workspace(BLUEPRINT, outdir=local_synth.outdir, synthesize=False)
    # Before anything exists: the first stack plans, the next one waits for its inputs.
    first_two = lifecycle.Workspace(stacks=ws.stacks[:2], environments=ws.environments)
    planned = lifecycle.plan(first_two)
    assert planned[0].action == "planned" and planned[0].changes and "to create" in planned[0].detail
    assert planned[1].action == "blocked" and "uae-local-security" in planned[1].detail
    try:
        applied = lifecycle.apply(ws)
        assert [r.stack for r in applied] == [s.name for s in local_synth.stacks]
        check_deployed(clients, env.name)

        clean = run_mlctl("infra", "drift", "--no-synth", "--outdir", str(local_synth.outdir), "-o", "json")
        assert clean.returncode == 0, clean.stderr[-3000:]
        assert json.loads(clean.stdout) == {"changes": [], "drift": False}

        # A manual, security-relevant change made behind terraform's back.
        clients["ecr"].put_image_tag_mutability(repositoryName="triton-serving", imageTagMutability="MUTABLE")
        drifted = run_mlctl("infra", "drift", "--no-synth", "--outdir", str(local_synth.outdir), "-o", "json")
        assert drifted.returncode == 5, drifted.stderr[-3000:]
        assert "Traceback (most recent call last)" not in drifted.stderr, drifted.stderr[-3000:]
        # Under -o json the error is JSON on stderr (its last line): kind, message and the fix.
        error = json.loads(drifted.stderr.strip().splitlines()[-1])["error"]
        assert error["kind"] == "DriftDetected" and "drifted" in error["message"] and error["hint"]
        changes = json.loads(drifted.stdout)["changes"]
        repo = [c for c in changes if c["address"].startswith("aws_ecr_repository.registry_ecr-triton-serving")]
        assert repo and "image_tag_mutability" in repo[0]["attributes"]
        assert repo[0]["stack"] == "uae-local-registry"
        assert {c["stack"] for c in changes} == {"uae-local-registry"}
    finally:
        lifecycle.destroy(ws)
    check_gone(clients, env.name)
