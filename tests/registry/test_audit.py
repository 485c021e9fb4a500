"""The audit log on SQLite and PostgreSQL: appends from many processes, and a tamper matrix done
directly on the database, each case detected and the entry named."""

from __future__ import annotations

import getpass
import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from control_plane import audit
from control_plane.audit import merkle, seal
from control_plane.audit.entry import HASHED_FIELDS, canonical_json, leaf_data, stored_columns
from control_plane.store import get_engine
from tests.cli_runner import run_mlctl


def _seed(n: int = 5) -> None:
    # The first append signs a head at once (a new log); the rest are sealed, and the explicit
    # checkpoint (what the release engine does when a release ends) signs a head over all of them.
    for i in range(n):
        audit.record(action="model.register", subject=f"m:{i + 1}", digests={"root": f"sha256:{i}"})
    head = audit.checkpoint()
    assert head is not None and head.size == n


def _leaf(fields: dict[str, object]) -> bytes:
    cols = stored_columns(fields)
    return merkle.leaf_hash(leaf_data([cols[f] for f in HASHED_FIELDS]))


def _exec(sql: str, **params: object) -> None:
    with get_engine().begin() as conn:
        conn.execute(sa.text(sql), params)


def _edit() -> None:
    _exec("UPDATE audit_entries SET subject = 'evil:1' WHERE seq = 3")


def _delete_middle() -> None:
    _exec("DELETE FROM audit_entries WHERE seq = 3")


def _delete_newest() -> None:
    # Also roll the database's heads back to an older, validly signed one: the best an attacker with
    # database access can do. Only the copy of the heads outside the database catches this.
    _exec("DELETE FROM audit_entries WHERE seq >= 4")
    _exec("DELETE FROM audit_tree_heads WHERE size > 3")
    kept = audit.entries()
    tree = merkle.CompactRange()
    for e in kept:
        tree.append(bytes.fromhex(e.leaf_hash))
    from control_plane.audit import heads

    old = heads.sign(3, tree.root(), kept[-1].ts)  # stands in for an old copy of the database
    _exec("UPDATE audit_head SET seq = 3, signed_size = 3, checkpoint = :c, peaks = :p WHERE id = 1",
          c=old.to_json(), p=json.dumps([p.hex() for p in tree.peaks]))


def _delete_oldest() -> None:
    _exec("DELETE FROM audit_entries WHERE seq = 1")


def _insert() -> None:
    # A forged entry appended after #5 with a correctly computed leaf hash (the hash function is
    # public): only the seal, keyed by the host audit key outside the database, reveals it.
    fields = {"seq": 6, "ts": "2026-01-01T00:00:00.000000Z", "actor": "mallory", "roles": ["approver"],
              "action": "approve", "subject": "m:1", "decision": "allow", "reasons": [], "digests": {},
              "details": {}, "host": "h", "identity": None}
    _exec(
        "INSERT INTO audit_entries (seq, ts, actor, roles, action, subject, decision, reasons, digests, "
        "details, host, leaf_hash, seal) VALUES (6, :ts, 'mallory', :roles, 'approve', "
        "'m:1', 'allow', '[]', '{}', '{}', 'h', :leaf, :seal)",
        ts=fields["ts"], roles=canonical_json(["approver"]), leaf=_leaf(fields).hex(), seal="0" * 64,
    )


def _reorder() -> None:
    # Swap entries #2 and #3 (via a free sequence number, as the primary key is unique).
    _exec("UPDATE audit_entries SET seq = 1000 WHERE seq = 2")
    _exec("UPDATE audit_entries SET seq = 2 WHERE seq = 3")
    _exec("UPDATE audit_entries SET seq = 3 WHERE seq = 1000")


def _rewrite_third() -> None:
    # Edit #3 and recompute its leaf hash (public): the seal, which needs the host key, names it.
    e = audit.entries()[2]
    fields = {**e.hashed_fields(), "subject": "evil:1"}
    _exec("UPDATE audit_entries SET subject = 'evil:1', leaf_hash = :h WHERE seq = 3", h=_leaf(fields).hex())


def _rewrite_with_host_key() -> None:
    # An attacker who also stole the host seal key ($MLCTL_HOME/keys) rewrites #3 completely, leaf
    # and seal: only the signed tree head, which needs the signing key, shows the log changed since
    # the last head that still matches (#1, signed at the first append).
    e = audit.entries()[2]
    leaf = _leaf({**e.hashed_fields(), "subject": "evil:1"})
    _exec("UPDATE audit_entries SET subject = 'evil:1', leaf_hash = :h, seal = :s WHERE seq = 3",
          h=leaf.hex(), s=seal.seal(leaf))


def _edit_checkpoint() -> None:
    _exec("UPDATE audit_head SET checkpoint = replace(checkpoint, :a, :b) WHERE id = 1", a='"size":5', b='"size":4')


CASES: dict[str, tuple[Callable[[], None], int | None, str]] = {
    "edit": (_edit, 3, "entry #3: content does not match its hash"),
    "delete-middle": (_delete_middle, 3, "entry #3 is missing"),
    "delete-newest": (_delete_newest, 4, "entry #4..#5 is missing"),
    "delete-oldest": (_delete_oldest, 1, "entry #1 is missing"),
    "insert": (_insert, 6, "entry #6: its seal is missing or does not verify"),
    "rewrite-entry": (_rewrite_third, 3, "entry #3: its seal is missing or does not verify"),
    "rewrite-with-host-key": (_rewrite_with_host_key, 2,
                              "entries #2..#5: the tree root differs from the signed tree head #5"),
    "reorder": (_reorder, 2, "entry #2: content does not match its hash: it is entry #3 moved here"),
    "forged-checkpoint": (_edit_checkpoint, None, "database checkpoint's signature does not verify"),
}


def test_untouched_chain_verifies(db_url: str) -> None:
    _seed()
    report = audit.verify()
    assert report.ok, report.problems
    assert report.entries == 5 and report.checkpoint is not None and report.checkpoint["size"] == 5


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
    res = run_mlctl("--as", "ali", "audit", "export", str(out))
    assert res.returncode == 0, res.stderr
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [e["seq"] for e in lines] == [1, 2, 3]
    assert set(lines[0]) >= {"actor", "roles", "action", "subject", "digests", "decision", "reasons", "ts", "host",
                             "identity", "leaf_hash"}
    # Seeded in-process with no --as and no login: the operating-system user acted, and the entry says
    # how that was established (asserted by the host, not verified).
    assert lines[0]["identity"] == {"actor": getpass.getuser(), "roles": [], "method": "os-user", "issuer": None,
                                    "subject": None, "client": None, "kind": None, "extra": {}}
    # Each line carries its RFC 9162 leaf hash, recomputable offline from the line alone ...
    for e in lines:
        body = canonical_json({k: e[k] for k in HASHED_FIELDS}).encode()
        assert hashlib.sha256(b"\x00" + body).hexdigest() == e["leaf_hash"]
    # ... and the leaves rebuild the root of the signed head.
    head = audit.signed_heads()[-1]
    assert head["size"] == 3
    assert merkle.root([bytes.fromhex(e["leaf_hash"]) for e in lines]).hex() == head["root"]
    _edit()
    res = run_mlctl("--as", "ali", "audit", "verify", "-o", "json")
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
