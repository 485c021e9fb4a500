"""The audit trail on SQLite and PostgreSQL: appends from many processes, and a tamper matrix done
directly on the database, each case detected and the entry named."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from control_plane import audit
from control_plane.audit.chain import canonical_json, entry_hash
from control_plane.store import get_engine


def _seed(n: int = 5) -> None:
    for i in range(n):
        audit.record(action="model.register", subject=f"m:{i + 1}", digests={"root": f"sha256:{i}"})


def _exec(sql: str, **params: object) -> None:
    with get_engine().begin() as conn:
        conn.execute(sa.text(sql), params)


def _edit() -> None:
    _exec("UPDATE audit_entries SET subject = 'evil:1' WHERE seq = 3")


def _delete_middle() -> None:
    _exec("DELETE FROM audit_entries WHERE seq = 3")


def _delete_newest() -> None:
    # Also roll the database head back to an older, validly signed checkpoint: the best an
    # attacker with database access can do. Only the checkpoint file outside the DB catches this.
    _exec("DELETE FROM audit_entries WHERE seq >= 4")
    head = audit.entries()[-1]
    from control_plane.audit import checkpoint as cp

    old = cp.sign(head.seq, head.entry_hash, head.ts)  # stands in for an old checkpoint copy
    _exec("UPDATE audit_head SET seq = :s, entry_hash = :h, checkpoint = :c WHERE id = 1",
          s=head.seq, h=head.entry_hash, c=old.to_json())


def _delete_oldest() -> None:
    _exec("DELETE FROM audit_entries WHERE seq = 1")


def _insert() -> None:
    # A forged entry appended after #5, with a correctly computed chain hash (the hash function is
    # public): only the missing signature on a checkpoint for #6 can reveal it.
    last = audit.entries()[-1]
    fields = {"seq": 6, "ts": "2026-01-01T00:00:00.000000Z", "actor": "mallory", "roles": ["approver"],
              "action": "approve", "subject": "m:1", "decision": "allow", "reasons": [], "digests": {},
              "details": {}, "host": "h"}
    _exec(
        "INSERT INTO audit_entries (seq, ts, actor, roles, action, subject, decision, reasons, digests, "
        "details, host, prev_hash, entry_hash, checkpoint) VALUES (6, :ts, 'mallory', :roles, 'approve', "
        "'m:1', 'allow', '[]', '{}', '{}', 'h', :prev, :h, '{}')",
        ts=fields["ts"], roles=canonical_json(["approver"]), prev=last.entry_hash,
        h=entry_hash(last.entry_hash, fields),
    )


def _reorder() -> None:
    # Swap entries #2 and #3 (via a free sequence number, as the primary key is unique).
    _exec("UPDATE audit_entries SET seq = 1000 WHERE seq = 2")
    _exec("UPDATE audit_entries SET seq = 2 WHERE seq = 3")
    _exec("UPDATE audit_entries SET seq = 3 WHERE seq = 1000")


def _rewrite_from_third() -> None:
    # Edit #3 and recompute every hash from there (the hash function is public), the head included:
    # only the per-entry signed checkpoints, which need the signing key, reveal where it started.
    rows = audit.entries()
    prev = rows[1].entry_hash
    for e in rows[2:]:
        fields = {**e.as_dict(), "subject": "evil:1" if e.seq == 3 else e.subject}
        h = entry_hash(prev, fields)
        _exec("UPDATE audit_entries SET subject = :s, prev_hash = :p, entry_hash = :h WHERE seq = :q",
              s=fields["subject"], p=prev, h=h, q=e.seq)
        prev = h
    _exec("UPDATE audit_head SET entry_hash = :h WHERE id = 1", h=prev)


def _edit_checkpoint() -> None:
    _exec("UPDATE audit_head SET checkpoint = replace(checkpoint, :a, :b) WHERE id = 1", a='"seq":5', b='"seq":4')


CASES: dict[str, tuple[Callable[[], None], int | None, str]] = {
    "edit": (_edit, 3, "entry #3: content does not match its hash"),
    "delete-middle": (_delete_middle, 3, "entry #3 is missing"),
    "delete-newest": (_delete_newest, 4, "entry #4..#5 is missing"),
    "delete-oldest": (_delete_oldest, 1, "entry #1 is missing"),
    "insert": (_insert, 6, "entry #6: its signed checkpoint is missing or does not verify"),
    "rewrite-chain": (_rewrite_from_third, 3, "entry #3: its signed checkpoint is missing or does not verify"),
    "reorder": (_reorder, 2, "entry #2: content does not match its hash: it is entry #3 moved here"),
    "forged-checkpoint": (_edit_checkpoint, None, "database checkpoint's signature does not verify"),
}


def test_untouched_chain_verifies(db_url: str) -> None:
    _seed()
    report = audit.verify()
    assert report.ok, report.problems
    assert report.entries == 5 and report.checkpoint is not None and report.checkpoint["seq"] == 5


@pytest.mark.parametrize("case", sorted(CASES))
def test_tamper_is_detected_and_named(db_url: str, case: str) -> None:
    _seed()
    tamper, first_bad, message = CASES[case]
    tamper()
    report = audit.verify()
    assert not report.ok
    assert report.first_bad == first_bad, report.problems
    assert any(message in p for p in report.problems), report.problems


def test_cli_verify_names_the_entry_and_export_writes_jsonl(db_url: str, tmp_path: Path) -> None:
    from control_plane.access.roles import write_assignments

    write_assignments({"ali": ["auditor"]})
    _seed(3)
    out = tmp_path / "audit.jsonl"
    env_cmd = [sys.executable, "-m", "control_plane", "--as", "ali"]
    res = subprocess.run([*env_cmd, "audit", "export", str(out)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [e["seq"] for e in lines] == [1, 2, 3]
    assert set(lines[0]) >= {"actor", "roles", "action", "subject", "digests", "decision", "reasons", "ts", "host",
                             "prev_hash", "entry_hash", "checkpoint"}
    assert lines[2]["checkpoint"]["head"] == lines[2]["entry_hash"]
    _edit()
    res = subprocess.run([*env_cmd, "audit", "verify", "-o", "json"], capture_output=True, text=True)
    assert res.returncode == 8, res.stderr
    assert json.loads(res.stdout)["first_bad"] == 3
    assert "entry #3" in res.stderr


_APPENDER = """
import sys
from control_plane import audit
for i in range(int(sys.argv[1])):
    audit.record(action="test.concurrent", subject=f"p{sys.argv[2]}:{i}")
"""


def test_appends_from_concurrent_processes_keep_one_chain(db_url: str) -> None:
    get_engine()  # migrate once before the processes race
    procs = [subprocess.Popen([sys.executable, "-c", _APPENDER, "8", str(p)]) for p in range(4)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    report = audit.verify()
    assert report.ok, report.problems
    assert report.entries == 32
