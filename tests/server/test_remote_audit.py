"""`mlctl audit` through `mlctl server`, over HTTPS with real tokens: verify, prove, consistency,
checkpoint, list and export give what the local commands give (same JSON, same exit codes);
proofs and reading entries need the auditor's permissions (403 with the local message otherwise);
an offline `verify --export` stays on this machine; a tampered trail exits 8 through the server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import update

from control_plane import audit
from control_plane.audit.models import AuditRow
from control_plane.store import session_scope
from tests.cli_runner import run_mlctl
from tests.server.conftest import Api, both


@pytest.fixture()
def served(api: Api, signed_fraud: str, monkeypatch: pytest.MonkeyPatch) -> Api:
    monkeypatch.setenv("MLCTL_SERVER", api.url)
    api.oidc.login("ali")  # the auditor
    return api



def test_checkpoint_prove_and_consistency_are_the_local_results(served: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    first = run_mlctl("audit", "checkpoint", "-o", "json", in_process=True, check=True).json()
    size = first["head"]["size"]
    assert size == len(audit.entries()) and first["head"]["key_id"]
    assert size in [h["size"] for h in audit.signed_heads()]
    through, here = both(monkeypatch, served, "audit", "prove", "1", "-o", "json")
    assert through.returncode == here.returncode == 0, through
    assert through.json() == here.json() and through.json()["head"]["size"] == size
    through, here = both(monkeypatch, served, "audit", "prove", "1")
    assert through.stdout == here.stdout and "entry #1 is included" in through.stdout
    run_mlctl("audit", "checkpoint", in_process=True, check=True)  # a newer head over more entries
    through, here = both(monkeypatch, served, "audit", "consistency", str(size), "-o", "json")
    assert through.returncode == here.returncode == 0 and through.json() == here.json(), through
    assert through.json()["old"]["size"] == size
    through, here = both(monkeypatch, served, "audit", "prove", "100000")
    assert through.returncode == here.returncode != 0 and through.stderr == here.stderr, through


def test_verify_through_the_server_and_a_tampered_trail(served: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    run_mlctl("audit", "checkpoint", in_process=True, check=True)
    through, here = both(monkeypatch, served, "audit", "verify", "-o", "json")
    assert through.returncode == here.returncode == 0, through
    assert through.json() == here.json() and through.json()["ok"] is True
    with session_scope() as s:
        s.execute(update(AuditRow).where(AuditRow.seq == 1).values(actor="mallory"))
    through, here = both(monkeypatch, served, "audit", "verify", "-o", "json")
    assert through.returncode == here.returncode == 8, through
    assert through.json() == here.json() and through.json()["first_bad"] == 1
    assert through.stderr == here.stderr and "entry #1" in through.stderr


def test_list_and_export_read_the_servers_trail(served: Api, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    through, here = both(monkeypatch, served, "audit", "list", "--model", "fraud", "-o", "json")
    assert through.returncode == here.returncode == 0 and through.json() == here.json(), through
    assert {e["action"] for e in through.json()} >= {"model.register", "model.sign"}

    out = run_mlctl("audit", "export", str(tmp_path / "remote.jsonl"), "-o", "json", in_process=True, check=True).json()
    remote_lines = (tmp_path / "remote.jsonl").read_text().splitlines()
    assert out == {"path": str(tmp_path / "remote.jsonl"), "entries": len(remote_lines)} and remote_lines
    assert (tmp_path / "remote.jsonl").stat().st_mode & 0o777 == 0o600
    monkeypatch.delenv("MLCTL_SERVER")
    run_mlctl("audit", "export", str(tmp_path / "local.jsonl"), in_process=True, check=True)
    local_lines = (tmp_path / "local.jsonl").read_text().splitlines()
    # the local export also holds the entry the remote export recorded: the remote file is its prefix
    assert local_lines[: len(remote_lines)] == remote_lines and len(local_lines) == len(remote_lines) + 1
    assert json.loads(local_lines[-1])["action"] == "audit.export" and json.loads(local_lines[-1])["actor"] == "ali"
    monkeypatch.setenv("MLCTL_SERVER", served.url)

    stdout = run_mlctl("audit", "export", "-", "--actor", "eli", in_process=True, check=True).stdout
    assert stdout and all(json.loads(line)["actor"] == "eli" for line in stdout.splitlines())
    r = run_mlctl("audit", "export", str(tmp_path / "missing" / "x.jsonl"), in_process=True)
    assert r.returncode == 6 and "does not exist" in r.stderr


def test_reading_the_trail_needs_the_permission(served: Api) -> None:
    served.oidc.login("dana")  # a data scientist
    for args, permission in ((("audit", "list"), "audit.export"), (("audit", "export", "-"), "audit.export"),
                             (("audit", "prove", "1"), "audit.verify"), (("audit", "checkpoint"), "audit.verify")):
        r = run_mlctl(*args, in_process=True)
        assert r.returncode == 4, r
        assert f"actor 'dana' (roles: data-scientist) lacks permission '{permission}'" in r.stderr
    denied = [e for e in audit.entries() if e.decision == "deny" and e.actor == "dana"]
    assert len(denied) == 4 and all(e.details["identity"]["source"] == "verified" for e in denied)
    r = run_mlctl("audit", "verify", in_process=True)  # anyone may check that the trail is intact
    assert r.returncode == 0, r


def test_monitor_events_reads_the_servers_event_log(served: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    through, here = both(monkeypatch, served, "monitor", "events", "--last", "0", "-o", "json")
    assert through.returncode == here.returncode == 0 and through.json() == here.json(), through
    types = [e["type"] for e in through.json()]
    assert any(t.endswith("model.registered") for t in types), types
    through, here = both(monkeypatch, served, "monitor", "events", "--type", "model.*", "-o", "json")
    assert through.json() == here.json() and through.json()
    assert all(".model." in e["type"] or e["type"].split(".")[-2] == "model" for e in through.json())
    r = run_mlctl("monitor", "replay", "-o", "json", in_process=True)  # the server's dead letters (none here)
    assert r.returncode == 0 and r.json() == {"delivered": 0, "still_failing": 0, "unknown_sink": 0}, r
