"""`mlctl infra` through `mlctl server` (MLCTL_SERVER), over HTTPS with real tokens from the real
OpenID provider: the server runs terraform on **its** blueprint against the AWS emulator (moto) as a
background operation the client follows, giving the local command's progress lines, JSON and exit
codes; a caller without platform-admin is refused before anything starts (403, audited); a
blueprint or directory on the client's machine is refused with the fix."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from control_plane import audit
from control_plane.client import RemoteInfra
from control_plane.infra.synth import default_outdir
from control_plane.server import infra_routes, operations
from tests.cli_runner import run_mlctl
from tests.infra.conftest import terraform_ready  # noqa: F401  (the fixture: terraform and the provider mirror)
from tests.server.conftest import Api, both
from tests.synthesis import REPO, Synthesis

BLUEPRINT = REPO / "blueprints" / "uae-local.yaml"


@pytest.fixture()
def served(api: Api, monkeypatch: pytest.MonkeyPatch) -> Api:
    from control_plane.access.roles import write_assignments
    from tests.registry.conftest import ROLES

    write_assignments(ROLES)  # the local runs of `both` act as the same names, asserted (dev tier)
    monkeypatch.setenv("MLCTL_SERVER", api.url)
    return api


def _infra_operations() -> list[operations.Operation]:
    with operations._lock:
        return [op for op in operations._operations.values() if op.kind.startswith("infra.")]


@pytest.mark.parametrize("verb", ["apply", "bootstrap", "destroy"])
def test_a_change_without_platform_admin_is_refused_before_anything_starts(served: Api, verb: str) -> None:
    before = len(_infra_operations())
    served.oidc.login("eli")  # an ML engineer: may release models, not change infrastructure
    r = run_mlctl("infra", verb, "-o", "json", *(["--yes"] if verb == "destroy" else []), in_process=True)
    assert r.returncode == 4, r
    assert f"actor 'eli' (roles: ml-engineer) lacks permission 'infra.{verb}'" in r.stderr
    assert json.loads(r.stderr)["error"]["kind"] == "PolicyViolation"
    raw = served.call("POST", f"/v1/infra/{verb}", served.token("eli"), json={})
    assert raw.status_code == 403 and f"lacks permission 'infra.{verb}'" in raw.json()["error"]["message"]
    denied = [e for e in audit.entries() if e.action == f"infra.{verb}" and e.decision == "deny"]
    assert len(denied) == 2 and {e.actor for e in denied} == {"eli"} and denied[-1].subject == "uae-local"
    assert all(e.details["identity"]["source"] == "verified" for e in denied)
    assert denied[-1].details["identity"]["subject"] and denied[-1].details["identity"]["issuer"]
    assert len(_infra_operations()) == before  # nothing started
    assert not default_outdir(BLUEPRINT).exists()  # nothing synthesized


def test_files_on_the_client_are_refused_with_the_fix(served: Api, tmp_path: Path) -> None:
    served.oidc.login("pat")
    r = run_mlctl("infra", "plan", "--blueprint", str(BLUEPRINT), in_process=True)
    assert r.returncode == 2, r
    assert "with MLCTL_SERVER, infra runs a blueprint the server has, never a file on this machine" in r.stderr
    assert "--blueprint uae-local" in r.stderr  # the fix: name it
    r = run_mlctl("infra", "apply", "--outdir", str(tmp_path), in_process=True)
    assert r.returncode == 2 and "the server synthesizes into its own directory" in r.stderr, r
    for flag in ("--stacks-dir", "--skips"):
        r = run_mlctl("infra", "check", flag, str(tmp_path), in_process=True)
        assert r.returncode == 2 and f"drop {flag}" in r.stderr, r
    r = run_mlctl("infra", "destroy", "-b", "./mine.yaml", "--yes", in_process=True)
    assert r.returncode == 2 and "never a file on this machine" in r.stderr, r
    for bad in ("../../etc/passwd", str(BLUEPRINT), "uae-local.yaml"):  # the API refuses them too
        raw = served.call("POST", "/v1/infra/plan", served.token("pat"), json={"blueprint": bad})
        assert raw.status_code == 422 and "by name" in raw.json()["error"]["message"], raw.text
    raw = served.call("POST", "/v1/infra/plan", served.token("pat"), json={"blueprint": "nowhere"})
    assert raw.status_code == 404 and "uae-local" in raw.json()["error"]["hint"]
    assert not _infra_operations() or all(op.done for op in _infra_operations())
    unknown = served.call("GET", "/v1/infra/operations/0123", served.token("pat"))
    assert unknown.status_code == 404 and "do not survive a server restart" in unknown.json()["error"]["hint"]


def _without_seconds(view: dict[str, object]) -> object:
    return [{k: v for k, v in s.items() if k != "seconds"} for s in view["stacks"]]  # type: ignore[attr-defined]


def _progress(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("uae-local")]


@pytest.mark.slow  # two terraform plans of every uae-local stack: 330–530 s measured on the shared 2-core machine
@pytest.mark.timeout(1500)
def test_bootstrap_and_plan_through_the_server_are_the_local_ones(
        served: Api, monkeypatch: pytest.MonkeyPatch, aws_emulator: str, local_synth: Synthesis,
        terraform_ready: None) -> None:  # noqa: F811
    served.oidc.login("pat")  # platform-admin
    through = run_mlctl("infra", "bootstrap", "-o", "json", in_process=True)
    assert through.returncode == 0, through
    [backend] = through.json()["backends"]
    assert backend["cloud"] == "aws" and backend["environment"] == "uae-local" and backend["bucket"]
    assert "uae-local: state backend s3://" in through.stderr  # the server's progress line, passed on
    done = [e for e in audit.entries() if e.action == "infra.bootstrap" and e.decision == "allow"]
    assert [e.actor for e in done] == ["pat"] and done[0].details["identity"]["source"] == "verified"
    assert done[0].subject == "uae-local" and done[0].details["backend"] == f"s3://{backend['bucket']}"
    again, here = both(monkeypatch, served, "infra", "bootstrap", "-o", "json")  # idempotent, either way
    assert again.returncode == here.returncode == 0 and again.json() == here.json(), (again, here)
    assert here.json()["backends"][0]["bucket"] == backend["bucket"]
    assert (here.json()["backends"][0]["created_bucket"], here.json()["backends"][0]["created_key"]) == (False, False)
    table = run_mlctl("infra", "bootstrap", in_process=True)
    assert table.returncode == 0 and f"s3://{backend['bucket']}" in table.stdout and " no " in table.stdout, table

    # The server plans the stacks it synthesized (here: the session's synthesis, in its home).
    shutil.copytree(local_synth.outdir, default_outdir(BLUEPRINT), dirs_exist_ok=True)
    served.oidc.login("ali")  # an auditor: a plan changes nothing, and needs no role
    through, here = both(monkeypatch, served, "infra", "plan", "--no-synth", "-o", "json")
    assert through.returncode == here.returncode == 0, (through, here)
    assert _without_seconds(through.json()) == _without_seconds(here.json())
    stacks = through.json()["stacks"]
    assert [s["stack"] for s in stacks] == [s.name for s in local_synth.stacks]
    assert stacks[0]["action"] == "planned" and "to create" in stacks[0]["detail"]
    assert {s["action"] for s in stacks[1:]} <= {"planned", "blocked"}
    assert _progress(through.stderr) == _progress(here.stderr) and "uae-local-network: plan" in through.stderr
    assert not _infra_operations() or all(op.done for op in _infra_operations())


def test_one_infra_operation_per_blueprint_and_only_its_starter_sees_it(served: Api) -> None:
    token = served.token("ali")  # synth changes nothing deployed: no role needed
    started = served.call("POST", "/v1/infra/synth", token, json={"blueprint": "uae-local"})
    assert started.status_code == 202, started.text
    assert started.json()["verb"] == "synth" and started.json()["blueprint"] == "uae-local"
    op = f"/v1/infra/operations/{started.json()['id']}"
    second = served.call("POST", "/v1/infra/plan", served.token("pat"), json={})  # the server's default: the same
    assert second.status_code == 409 and started.json()["id"] in second.json()["error"]["message"], second.text
    assert served.call("GET", op, served.token("pat")).status_code == 404  # only its starter sees it
    for _ in range(600):
        state = served.call("GET", op, token).json()
        if state["done"]:
            break
        time.sleep(1)
    assert state["done"] and state["error"] is None, state
    assert state["progress"][0][0] == "uae-local" and "synthesizing into" in state["progress"][0][1]
    assert state["result"]["outdir"] == str(default_outdir(BLUEPRINT))
    stacks = state["result"]["stacks"]
    assert {"uae-local-network", "uae-local-security"} <= {s["name"] for s in stacks}
    assert [s["order"] for s in stacks] == sorted(s["order"] for s in stacks)  # in apply order
    assert RemoteInfra._view("synth", state["result"]).as_json() == state["result"]  # the client's view: the same
    with infra_routes._busy_lock:
        assert infra_routes._claim_locked(BLUEPRINT.resolve()) is None  # free again


def test_the_client_rebuilds_each_verbs_view_with_its_exit_code() -> None:
    """What the server sends (each view's ``as_json``) becomes the same view here: the same JSON,
    table and failure (drift → 5 naming each resource, an unexplained finding → the gate's 4)."""
    from control_plane.infra.lifecycle import DriftItem, StackResult
    from control_plane.output import render
    from control_plane.policy.findings import Finding, GateReport, StaleSkip
    from control_plane.services import infra as service

    aws = {"cloud": "aws", "environment": "uae-local", "bucket": "b", "region": "me-central-1",
           "kms_key_arn": "arn:aws:kms:me-central-1:1:key/k", "created_bucket": True, "created_key": False}
    azure = {"cloud": "azure", "environment": "uae-prod-azure", "storage_account": "st", "container": "tfstate",
             "region": "uaenorth", "key_id": "https://kv/keys/k", "checks": []}
    views: dict[str, Any] = {
        "bootstrap": service.BackendsView([aws, azure]),
        "plan": service.StackResultsView("plan", [StackResult("uae-local-network", "planned", True, 1.5, "3 to create")]),
        "drift": service.DriftView([DriftItem("uae-local-registry", "aws_ecr_repository.r", ["update"],
                                              ["image_tag_mutability"], "changed outside terraform")]),
        "check": service.GateView(GateReport(
            blueprint="uae-local", stacks=["uae-local-network"],
            findings=[Finding("checkov", "CKV_AWS_1", "uae-local-network", "aws_vpc.v", "bad"),
                      Finding("rego", "R1", "uae-local-network", "aws_s3_bucket.s", "ok", skipped_reason="why. more")],
            stale_skips=[StaleSkip(0, "CKV_AWS_2", "aws_x.y", "uae-local-network", "gone")],
            checkov_version="3", skips_file="policies/skips.yaml")),
    }
    for verb, view in views.items():
        rebuilt = RemoteInfra._view(verb, json.loads(json.dumps(view.as_json())))
        assert rebuilt.as_json() == view.as_json(), verb
        assert getattr(rebuilt, "rows", None) == getattr(view, "rows", None)
        assert getattr(rebuilt, "notes", None) == getattr(view, "notes", None)
        local, remote = (getattr(v, "failure", lambda: None)() for v in (view, rebuilt))
        assert (type(local), getattr(local, "message", None), getattr(local, "exit_code", None)) == (
            type(remote), getattr(remote, "message", None), getattr(remote, "exit_code", None)), verb
        render(rebuilt, "table")  # renders without error
    drift = RemoteInfra._view("drift", views["drift"].as_json()).failure()
    assert drift is not None and drift.exit_code == 5 and "aws_ecr_repository.r" in drift.message
    gate = RemoteInfra._view("check", views["check"].as_json()).failure()
    assert gate is not None and gate.exit_code == 4 and "CKV_AWS_1 aws_vpc.v" in gate.message
    assert views["bootstrap"].rows == [("uae-local", "s3://b", "me-central-1", aws["kms_key_arn"], "bucket"),
                                       ("uae-prod-azure", "azurerm://st/tfstate", "uaenorth", "https://kv/keys/k", "-")]
