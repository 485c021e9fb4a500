"""release list/history, model show and the --model/--actor/--since filters on SQLite and on a
real PostgreSQL (``db_url``). Versions and approvals go through the real services; release rows
are recorded the way the engine records them (the runtime is not what these views read)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.registry.conftest import ROLES, make_model, run_cli


def _stamp(delta: timedelta) -> str:
    return (datetime.now(UTC) - delta).isoformat(timespec="milliseconds")


@pytest.fixture()
def recorded(db_url: str, mlctl_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    from control_plane import registry
    from control_plane.access.roles import write_assignments
    from control_plane.release.models import LiveServiceRow, ReleaseRow
    from control_plane.services import Context
    from control_plane.services import approvals as approval_service
    from control_plane.store import session_scope

    write_assignments(ROLES)
    monkeypatch.setenv("MLCTL_ACTOR", "eli")
    registry.register("digits", "1", make_model(tmp_path / "a", "a"), code_commit="3f2c1e9")
    registry.register("digits", "2", make_model(tmp_path / "b", "b"), code_commit="3f2c1e9", parent="digits:1")
    registry.register("digits", "2+onnx", make_model(tmp_path / "c", "c"), derived_from="digits:2",
                      code_commit="3f2c1e9")
    registry.register("fraud", "1", make_model(tmp_path / "d", "d"), code_commit="3f2c1e9")
    monkeypatch.setenv("MLCTL_ACTOR", "amira")
    approval_service.approve(Context(), "digits", "2", "uae-local")
    rows = [
        ("rel-a", "digits", "1", "DONE", "eli", timedelta(days=3)),
        ("rel-b", "digits", "2", "ROLLED_BACK", "pat", timedelta(hours=5)),
        ("rel-c", "digits", "2", "DONE", "eli", timedelta(minutes=20)),
        ("rel-d", "fraud", "1", "SWITCHED", "pat", timedelta(minutes=5)),
    ]
    with session_scope() as s:
        for rid, model, version, state, who, age in rows:
            s.add(ReleaseRow(id=rid, service=model, model_name=model, model_version=version, digest="",
                             environment="uae-local", strategy="blue-green", state=state, colour="blue",
                             config="{}", reasons=json.dumps(["post-promotion: p95 too high"] if state ==
                                                             "ROLLED_BACK" else []),
                             created_by=who, created_at=_stamp(age), updated_at=_stamp(age)))
        s.add(LiveServiceRow(service="digits", environment="uae-local", live_colour="blue", live_version="2",
                             live_release_id="rel-c", updated_at=_stamp(timedelta(minutes=19))))
    monkeypatch.delenv("MLCTL_ACTOR")
    return db_url


def test_release_list_filters_and_history(recorded: str, capsys: pytest.CaptureFixture[str]) -> None:
    def ids(*args: str) -> list[str]:
        code, out, err = run_cli("release", "list", *args, "-o", "json")
        assert code == 0, err
        return [r["release"] for r in json.loads(out)]

    assert ids() == ["rel-d", "rel-c", "rel-b", "rel-a"]  # newest first
    assert ids("--service", "digits") == ["rel-c", "rel-b", "rel-a"]
    assert ids("--state", "done") == ["rel-c", "rel-a"]
    assert ids("--state", "active") == ["rel-d"]
    assert ids("--state", "ROLLED_BACK", "--state", "SWITCHED") == ["rel-d", "rel-b"]
    assert ids("--model", "digits:2") == ["rel-c", "rel-b"]
    assert ids("--actor", "pat") == ["rel-d", "rel-b"]
    assert ids("--since", "1h") == ["rel-d", "rel-c"]
    assert ids("--since", _stamp(timedelta(days=1))) == ["rel-d", "rel-c", "rel-b"]
    code, _, err = run_cli("release", "list", "--state", "DONNE")
    assert code == 2 and "not a release state" in err
    code, _, err = run_cli("release", "list", "--since", "yesterday")
    assert code == 2 and "neither a duration nor a date" in err
    code, out, _ = run_cli("release", "history", "digits")
    assert code == 0 and out.index("rel-c") < out.index("rel-b") < out.index("rel-a")
    assert "p95 too high" in out
    code, _, err = run_cli("release", "history", "nothing")
    assert code == 6


def test_model_show_lists_siblings_derived_approvals_and_deployments(
    recorded: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli("model", "show", "digits:2", "-o", "json")
    assert code == 0
    view = json.loads(out)
    assert view["siblings"] == ["1"]
    assert [d["ref"] for d in view["derived"]] == ["digits:2+onnx"]
    assert [(a["env"], a["approver"]) for a in view["approvals"]] == [("uae-local", "amira")]
    assert [(d["release"], d["state"], d["live"]) for d in view["deployments"]] == [
        ("rel-b", "ROLLED_BACK", False), ("rel-c", "DONE", True)]


def test_model_and_audit_filters(recorded: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli("model", "list", "--model", "digits", "-o", "json")
    assert [v["ref"] for v in json.loads(out)] == ["digits:1", "digits:2", "digits:2+onnx"]
    code, out, _ = run_cli("model", "list", "--actor", "nobody", "-o", "json")
    assert json.loads(out) == []
    code, out, _ = run_cli("model", "list", "--since", "1h", "-o", "json")
    assert len(json.loads(out)) == 4
    code, out, err = run_cli("--as", "ali", "audit", "list", "--actor", "amira", "-o", "json")
    assert code == 0, err
    assert {e["action"] for e in json.loads(out)} == {"approve"}
    code, out, _ = run_cli("--as", "ali", "audit", "list", "--model", "fraud", "-o", "json")
    entries = json.loads(out)
    assert entries and all("fraud" in e["subject"] for e in entries)
    code, out, _ = run_cli("--as", "ali", "audit", "list", "--since", "2099-01-01", "-o", "json")
    assert json.loads(out) == []
