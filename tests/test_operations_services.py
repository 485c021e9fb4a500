"""The operations verbs called directly (no CLI): local up/down and the infra changes are
authorized (platform-admin, policies/rbac.rego) before anything starts, denials are audited,
state-changing drift remediation needs monitor.drift, and the views carry the CLI's JSON and failures.
The allowed paths run in tests/release/test_local_cli.py and tests/identity/test_local_idp.py
(processes started) and tests/infra/ (terraform against the emulator)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from control_plane import audit
from control_plane.access.roles import write_assignments
from control_plane.emulator import aws as emulator
from control_plane.emulator import processes
from control_plane.errors import BlueprintError, DriftDetected, PolicyViolation
from control_plane.services import Context, infra, monitoring, operations
from control_plane.settings import BLUEPRINTS_DIR
from tests.cli_runner import run_mlctl

LOCAL = BLUEPRINTS_DIR / "uae-local.yaml"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def engineer(mlctl_home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An ml-engineer: may release and run drift remediation, may not run the environment."""
    write_assignments({"eli": ["ml-engineer"], "pat": ["platform-admin"]})
    monkeypatch.setenv("MLCTL_ACTOR", "eli")
    monkeypatch.setenv("MLCTL_EMULATOR_ENDPOINT", f"http://127.0.0.1:{processes.free_port()}")
    return "eli"


def test_local_up_and_down_need_platform_admin_and_denials_are_audited(engineer: str) -> None:
    with pytest.raises(PolicyViolation, match=r"lacks permission 'local.up' \(granted to: platform-admin\)"):
        operations.local_up(Context(), LOCAL)
    assert not emulator.status().running  # refused before anything started
    with pytest.raises(PolicyViolation, match=r"local\.down"):
        operations.local_down(Context())
    denied = [(e.actor, e.action, e.decision) for e in audit.entries()]
    assert ("eli", "local.up", "deny") in denied and ("eli", "local.down", "deny") in denied


def test_local_up_without_any_identity_role_is_refused_by_the_cli(mlctl_home: Path) -> None:
    proc = run_mlctl("local", "up", "-o", "json", timeout=120)
    assert proc.returncode == PolicyViolation.exit_code and proc.stdout == ""
    error = json.loads(proc.stderr.strip().splitlines()[-1])["error"]
    assert error["kind"] == "PolicyViolation" and "local.up" in error["message"] and error["hint"]


@pytest.mark.parametrize("verb", [infra.bootstrap, infra.apply, infra.destroy])
def test_infra_changes_need_platform_admin_before_any_work(engineer: str, verb: object, tmp_path: Path) -> None:
    with pytest.raises(PolicyViolation, match="platform-admin"):
        if verb is infra.bootstrap:
            infra.bootstrap(Context(), LOCAL)
        else:
            verb(Context(), LOCAL, outdir=tmp_path / "out")  # type: ignore[operator]
    assert not (tmp_path / "out").exists()  # nothing synthesized for a refused actor
    action = {infra.bootstrap: "infra.bootstrap", infra.apply: "infra.apply", infra.destroy: "infra.destroy"}[verb]
    assert [(e.action, e.subject, e.decision) for e in audit.entries()][-1] == (action, "uae-local", "deny")


def test_a_bad_blueprint_is_a_usage_error_before_authorization(mlctl_home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ncloud: aws\nregion: eu-west-1\n")
    with pytest.raises(BlueprintError):
        infra.apply(Context(), bad)  # no roles file at all: still the blueprint's error, exit 2


def test_drift_remediation_that_changes_things_needs_monitor_drift(engineer: str, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    ref, cur = tmp_path / "ref.csv", tmp_path / "cur.csv"
    pd.DataFrame({"x": [float(i % 10) for i in range(400)]}).to_csv(ref, index=False)
    pd.DataFrame({"x": [float(i % 10) + 7 for i in range(400)]}).to_csv(cur, index=False)
    monkeypatch.setenv("MLCTL_ACTOR", "pat")  # platform-admin: no monitor.drift
    with pytest.raises(PolicyViolation, match=r"monitor\.drift"):
        monitoring.drift(Context(), reference=str(ref), current=str(cur), remediation="retrain")
    view = monitoring.drift(Context(), reference=str(ref), current=str(cur), remediation="alert", fail_on_drift=True)
    assert view.as_json()["drift_detected"] is True and view.as_json()["actions"] == [{"action": "alert", "ok": True}]
    assert isinstance(view.failure(), DriftDetected)
    monkeypatch.setenv("MLCTL_ACTOR", "eli")  # ml-engineer: allowed
    assert monitoring.drift(Context(), reference=str(ref), current=str(cur), remediation="retrain").actions


def test_blueprint_validation_view_names_every_file(mlctl_home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ncloud: aws\nregion: eu-west-1\n")
    view = infra.validate_blueprints(Context(), [LOCAL, bad])
    doc = view.as_json()
    assert doc["valid"] is False and [f["valid"] for f in doc["files"]] == [True, False]
    assert doc["files"][0]["environments"][0]["name"] == "uae-local" and doc["files"][1]["fix"]
    assert isinstance(view.failure(), BlueprintError) and "bad.yaml" in str(view.failure())
    assert infra.validate_blueprints(Context(), [LOCAL]).failure() is None
