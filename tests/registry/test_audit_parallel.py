"""Verification over ranges checked side by side (worker processes) gives the sequential walk's
verdict: the same entry named for the same reason, on SQLite and PostgreSQL, with the tamper in a
range a worker process checked. The log is written in the exact format ``audit.record`` writes
(as bench/audit.py's loader does), so it is large enough for several ranges in a second."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from control_plane.audit import heads, merkle, parallel, seal
from control_plane.audit.entry import HASHED_FIELDS, leaf_data, stored_columns
from control_plane.audit.records import AuditReport
from control_plane.audit.scan import CHUNK
from control_plane.audit.verification import verify
from control_plane.store import get_engine

N, EVERY, TS = 3000, 500, "2026-12-01T00:00:00.000000Z"  # heads at #500..#2500; #2501..#3000 sealed only
WORKERS = 3  # ranges (0,1024], (1024,2048], (2048,...]: #2500 is in the last, a worker's


def _fields(i: int) -> dict[str, object]:
    return {"seq": i, "ts": TS, "actor": "eli", "roles": ["ml-engineer"], "action": "release.transition",
            "subject": f"service/d-{i % 7}", "decision": "allow", "reasons": [], "digests": {"m": f"sha256:{i}"},
            "details": {"step": i % 12, "note": "ünïcode \"quoted\"\n"}, "host": "h",
            "identity": None if i % 5 else {"actor": "eli", "method": "asserted"}}


def _load(n: int = N, every: int = EVERY, unsigned_tail: int = 200) -> None:
    """``n`` entries, a signed head every ``every`` entries except over the last ``unsigned_tail``
    (sealed only, as between two heads)."""
    key, tree, signer = seal.key(), merkle.CompactRange(), heads.signer()
    rows, head_rows, last = [], [], None
    for i in range(1, n + 1):
        cols = stored_columns(_fields(i))
        leaf = merkle.leaf_hash(leaf_data([cols[f] for f in HASHED_FIELDS]))
        tree.append(leaf)
        rows.append({**cols, "leaf_hash": leaf.hex(), "seal": seal.seal(leaf, key)})
        if i % every == 0 and i <= n - unsigned_tail:
            last = heads.sign(i, tree.root(), TS, with_signer=signer)
            heads.write_local(last)
            head_rows.append({"size": i, "root": last.root, "ts": TS, "head": last.to_json()})
    assert last is not None
    with get_engine().begin() as conn:
        conn.execute(sa.text("INSERT INTO audit_entries (seq, ts, actor, roles, action, subject, decision, reasons, "
                             "digests, details, host, identity, leaf_hash, seal) VALUES (:seq, :ts, :actor, :roles, "
                             ":action, :subject, :decision, :reasons, :digests, :details, :host, :identity, "
                             ":leaf_hash, :seal)"), rows)
        conn.execute(sa.text("INSERT INTO audit_tree_heads (size, root, ts, head) VALUES (:size, :root, :ts, :head)"),
                     head_rows)
        conn.execute(sa.text("UPDATE audit_head SET seq = :n, peaks = :p, signed_size = :s, signed_at = :ts, "
                             "checkpoint = :c WHERE id = 1"),
                     {"n": n, "p": json.dumps([p.hex() for p in tree.peaks]), "s": last.size, "ts": TS,
                      "c": last.to_json()})


def _exec(sql: str, **params: object) -> None:
    with get_engine().begin() as conn:
        conn.execute(sa.text(sql), params)


def _rewrite_with_host_key() -> None:
    cols = stored_columns({**_fields(2500), "subject": "evil"})
    leaf = merkle.leaf_hash(leaf_data([cols[f] for f in HASHED_FIELDS]))
    _exec("UPDATE audit_entries SET subject = 'evil', leaf_hash = :h, seal = :s WHERE seq = 2500",
          h=leaf.hex(), s=seal.seal(leaf))


def _reorder() -> None:
    _exec("UPDATE audit_entries SET seq = 100000 WHERE seq = 2500")
    _exec("UPDATE audit_entries SET seq = 2500 WHERE seq = 2501")
    _exec("UPDATE audit_entries SET seq = 2501 WHERE seq = 100000")


CASES: dict[str, tuple[Callable[[], None], int | None, str]] = {
    "untouched": (lambda: None, None, ""),
    "edit": (lambda: _exec("UPDATE audit_entries SET actor = 'mallory' WHERE seq = 2500"), 2500,
             "entry #2500: content does not match its hash: its content was edited"),
    "delete": (lambda: _exec("DELETE FROM audit_entries WHERE seq = 2500"), 2500, "entry #2500 is missing"),
    "delete-range-end": (lambda: _exec("DELETE FROM audit_entries WHERE seq = 2048"), 2048, "entry #2048 is missing"),
    "delete-range-start": (lambda: _exec("DELETE FROM audit_entries WHERE seq = 2049"), 2049,
                           "entry #2049 is missing"),
    "reorder": (_reorder, 2500, "entry #2500: content does not match its hash: it is entry #2501 moved here"),
    "rewrite-with-host-key": (_rewrite_with_host_key, 2001,
                              "entries #2001..#2500: the tree root differs from the signed tree head #2500"),
    "forged-seal-in-tail": (lambda: _exec("UPDATE audit_entries SET seal = :s WHERE seq = 2900", s="0" * 64), 2900,
                            "entry #2900: its seal is missing or does not verify"),
    "truncated": (lambda: _exec("DELETE FROM audit_entries WHERE seq > 2400"), 2401, "entry #2401..#2500 is missing"),
}


def _same(a: AuditReport, b: AuditReport) -> None:
    assert (a.ok, a.first_bad, a.problems, a.entries, a.heads_checked, a.notes, a.checkpoint) == (
        b.ok, b.first_bad, b.problems, b.entries, b.heads_checked, b.notes, b.checkpoint)


@pytest.mark.parametrize("case", list(CASES))
def test_parallel_verification_names_what_the_sequential_walk_names(db_url: str, case: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLCTL_AUDIT_ANCHOR", "off")
    _load()
    tamper, first_bad, message = CASES[case]
    tamper()
    reference = verify(workers=0)  # the sequential walk alone
    report = verify(workers=WORKERS)
    _same(report, reference)
    assert report.first_bad == first_bad, report.problems
    if message:
        assert any(message in p for p in report.problems), report.problems
    else:
        assert report.ok and report.entries == N and report.heads_checked > 0, report.problems


def test_large_logs_take_the_parallel_path_by_setting(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLCTL_AUDIT_ANCHOR", "off")
    _load()
    _exec("UPDATE audit_entries SET subject = 'evil' WHERE seq = 2999")
    monkeypatch.setattr(parallel, "cpus", lambda: 2)  # as on a 2-CPU machine, whatever this one has
    monkeypatch.setenv("MLCTL_AUDIT_VERIFY_PARALLEL_FROM", str(N))
    assert parallel.plan(N, 2) == [(0, 2048), (2048, None)]
    report = verify()
    _same(report, verify(workers=0))
    assert report.first_bad == 2999 and "entry #2999: content does not match its hash" in report.problems[0]


@pytest.mark.parametrize("executable", ["/nonexistent/python", "/bin/false"])
def test_a_worker_that_fails_is_reported_and_the_log_verified_in_one_process(
        mlctl_home: object, monkeypatch: pytest.MonkeyPatch, executable: str) -> None:
    monkeypatch.setenv("MLCTL_AUDIT_ANCHOR", "off")
    _load()
    _exec("DELETE FROM audit_entries WHERE seq = 2500")
    monkeypatch.setattr(sys, "executable", executable)
    report = verify(workers=WORKERS)
    assert report.first_bad == 2500 and "entry #2500 is missing" in report.problems[0], report.problems
    assert any("verification worker" in n and "verified in one process instead" in n for n in report.notes), \
        report.notes


def test_the_ranges_subtrees_rebuild_the_tree_at_every_size() -> None:
    leaves = [merkle.leaf_hash(str(i).encode()) for i in range(300)]
    levels = merkle.pyramid(leaves)
    tree = merkle.CompactRange()
    for k, leaf in enumerate(leaves, start=1):
        tree.append(leaf)
        assert merkle.peaks_at(levels, k) == tree.peaks
    assert levels[-1] == [merkle.root(leaves[:256])]
    assert parallel.plan(10, 4) == [(0, None)]  # below one chunk: one range
    assert parallel.plan(5 * CHUNK + 1, 2) == [(0, 3 * CHUNK), (3 * CHUNK, None)]


def test_a_hash_shifted_into_the_next_entrys_is_named(mlctl_home: object, monkeypatch: pytest.MonkeyPatch) -> None:
    # SQLite keeps 65 characters in a VARCHAR(64) (PostgreSQL refuses them): the batch comparison
    # must not be fooled by the hashes of #2500 and #2501 still adding up to the same text.
    monkeypatch.setenv("MLCTL_AUDIT_ANCHOR", "off")
    _load()
    _exec("UPDATE audit_entries SET leaf_hash = (SELECT substr(leaf_hash, 64, 1) FROM audit_entries WHERE seq = 2500)"
          " || leaf_hash WHERE seq = 2501")
    _exec("UPDATE audit_entries SET leaf_hash = substr(leaf_hash, 1, 63) WHERE seq = 2500")
    report = verify(workers=WORKERS)
    _same(report, verify(workers=0))
    assert report.first_bad == 2500 and "entry #2500: content does not match its hash" in report.problems[0]
