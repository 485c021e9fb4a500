"""Appending on SQLite and PostgreSQL: the one-statement fast path (PostgreSQL, from the head this
process last wrote) against everything that can move the head under it: other processes appending
in lockstep and freely, a database restored to an older copy, a caller's transaction that commits
or rolls back, a pooled connection killed by the server, and a connection lost after its commit.

Each case ends with the log checked as an auditor would: every sequence number present once, the
tree head signed over the stored peaks, and ``audit.verify()`` clean.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import nullcontext, suppress
from pathlib import Path

import pytest
import sqlalchemy as sa

from control_plane import audit
from control_plane.audit import append
from control_plane.emulator import processes
from control_plane.store import get_engine, session_scope
from control_plane.store.db import append_engine


def _rows() -> list[tuple[int, str]]:
    with get_engine().connect() as conn:
        return [(r[0], r[1]) for r in conn.execute(sa.text("SELECT seq, subject FROM audit_entries ORDER BY seq"))]


def _audited(n: int) -> list[str]:
    """The log has exactly entries #1..#n, the head signed over the stored peaks verifies, and so
    does the whole log; returns the subjects in sequence order."""
    rows = _rows()
    assert [seq for seq, _ in rows] == list(range(1, n + 1))
    head = audit.checkpoint()  # signs the root of the compact range the appends maintained
    assert head is not None and head.size == n
    report = audit.verify()
    assert report.ok, report.problems
    assert report.entries == n and report.heads_checked >= 1
    return [subject for _, subject in rows]


# A worker process: one warm-up append (so it holds a fast-path hint), then `n` appends, either in
# lockstep with its peer (wait for its turn file, append, hand the turn over) or freely.
_WORKER = """
import sys, time
from pathlib import Path
from control_plane import audit
name, n, mode, turns = sys.argv[1], int(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
audit.record(action="test.warmup", subject=f"{name}:warm")
(turns / f"{name}.ready").touch()
while not (turns / "go").exists():
    time.sleep(0.005)
peer = "b" if name == "a" else "a"
for i in range(n):
    if mode == "lockstep":
        while not (turns / f"{name}.{i}").exists():
            time.sleep(0.002)
    audit.record(action="test.interleaved", subject=f"{name}:{i}")
    if mode == "lockstep":
        (turns / f"{peer}.{i if name == 'a' else i + 1}").touch()
"""


def _two_workers(tmp_path: Path, n: int, mode: str) -> None:
    get_engine()  # migrate once before the processes race
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, name, str(n), mode, str(tmp_path)]) for name in "ab"]
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"{name}.ready").exists() for name in "ab"):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "a worker did not start"
        time.sleep(0.01)
    (tmp_path / "a.0").touch()  # a goes first in lockstep
    (tmp_path / "go").touch()
    assert [p.wait(timeout=120) for p in procs] == [0, 0]


def test_lockstep_appends_from_two_processes_miss_their_hint_and_stay_one_log(db_url: str, tmp_path: Path) -> None:
    # Every append finds the head moved by the other process since its own last one: on PostgreSQL
    # each fast statement must match nothing and the locking path append instead.
    _two_workers(tmp_path, 15, "lockstep")
    subjects = _audited(32)
    assert subjects[2:] == [f"{name}:{i}" for i in range(15) for name in "ab"]  # strictly alternating


def test_free_running_appends_from_two_processes_stay_one_log(db_url: str, tmp_path: Path) -> None:
    _two_workers(tmp_path, 60, "free")
    subjects = _audited(122)
    for name in "ab":  # each process's entries all there, once, in its own order
        assert [s for s in subjects if s.startswith(f"{name}:") and s != f"{name}:warm"] == \
            [f"{name}:{i}" for i in range(60)]


def test_fast_path_hint_follows_the_head_it_committed(db_url: str) -> None:
    for i in range(3):
        audit.record(action="test.append", subject=f"s:{i}")
    with get_engine().connect() as conn:
        head = tuple(conn.execute(sa.text("SELECT seq, peaks FROM audit_head WHERE id = 1")).one())
    assert append._known[append_engine()] == head
    _audited(3)


def test_other_process_appending_in_between_is_followed(db_url: str) -> None:
    audit.record(action="test.append", subject="here:0")  # this process now remembers head #1
    code = "from control_plane import audit\nfor i in range(3): audit.record(action='test.append', subject=f'there:{i}')"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    entry = audit.record(action="test.append", subject="here:1")
    assert entry.seq == 5
    assert _audited(5) == ["here:0", "there:0", "there:1", "there:2", "here:1"]


def test_database_restored_to_the_same_size_with_other_entries_is_not_trusted(db_url: str) -> None:
    # This process remembers head #3 (seq 3, peaks P). The database is restored to #2 and another
    # process appends a different #3: the head is again seq 3, but with peaks P' != P. A guard on
    # the sequence number alone would build #4 on P and break the tree; the peaks guard must miss.
    for i in range(2):
        audit.record(action="test.append", subject=f"old:{i}")
    with get_engine().connect() as conn:
        saved = conn.execute(sa.text("SELECT seq, peaks, signed_size, signed_at, checkpoint FROM audit_head")).one()
    audit.record(action="test.append", subject="lost:2")
    with get_engine().begin() as conn:  # the restore: the rows and head as they were at #2
        conn.execute(sa.text("DELETE FROM audit_entries WHERE seq > 2"))
        conn.execute(sa.text("DELETE FROM audit_tree_heads WHERE size > 2"))
        conn.execute(sa.text("UPDATE audit_head SET seq = :seq, peaks = :peaks, signed_size = :signed_size, "
                             "signed_at = :signed_at, checkpoint = :checkpoint WHERE id = 1"), saved._asdict())
    code = "from control_plane import audit\naudit.record(action='test.append', subject='other:2')"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert append._known[append_engine()][0] == 3  # the hint's size matches the head's again
    audit.record(action="test.append", subject="new:3")
    assert _audited(4) == ["old:0", "old:1", "other:2", "new:3"]


@pytest.mark.parametrize("outcome", ["commit", "rollback"])
def test_append_in_a_callers_transaction_keeps_its_semantics(db_url: str, outcome: str) -> None:
    audit.record(action="test.append", subject="before")  # the fast path's hint: head #1

    class Refused(Exception):
        pass

    with pytest.raises(Refused) if outcome == "rollback" else nullcontext(), session_scope() as s:
        entry = audit.record(action="test.in-transaction", subject="inside", session=s)
        assert entry.seq == 2
        if outcome == "rollback":
            raise Refused
    after = audit.record(action="test.append", subject="after")
    if outcome == "rollback":  # nothing of it left, not even a used sequence number
        assert after.seq == 2
        assert _audited(2) == ["before", "after"]
    else:  # committed: the hint (#1) is stale, the next append must follow the head to #3
        assert after.seq == 3
        assert _audited(3) == ["before", "inside", "after"]


def test_pooled_connection_killed_by_the_server_appends_once(pg_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The fast path's pool does not ping: its connection found dead must not lose the entry.
    monkeypatch.setenv("MLCTL_DB_URL", pg_database)
    for i in range(3):
        audit.record(action="test.append", subject=f"s:{i}")
    admin = sa.create_engine(pg_database, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        killed = conn.execute(sa.text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                      "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
    admin.dispose()
    assert killed >= 1
    entry = audit.record(action="test.append", subject="s:3")
    assert entry.seq == 4
    audit.record(action="test.append", subject="s:4")  # and the pool works again
    assert _audited(5) == [f"s:{i}" for i in range(5)]


class _Proxy:
    """A TCP relay in front of PostgreSQL that, when armed, drops the next connection on which the
    server answers: the statement it answered has run and committed, the client never hears so."""

    def __init__(self, target_port: int) -> None:
        self.port = processes.free_port()
        self.armed = threading.Event()
        self.dropped = threading.Event()
        self._target = target_port
        self._server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self._target))
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, from_server: bool) -> None:
        try:
            while data := src.recv(65536):
                if from_server and self.armed.is_set():
                    self.armed.clear()
                    self.dropped.set()
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self._server.close()


@pytest.fixture()
def proxied_database(pg_database: str) -> Iterator[tuple[str, _Proxy]]:
    url = sa.make_url(pg_database)
    proxy = _Proxy(int(url.port or 5432))
    try:
        yield url.set(port=proxy.port).render_as_string(hide_password=False), proxy
    finally:
        proxy.close()


def test_connection_lost_after_the_fast_statement_committed_appends_once(
    proxied_database: tuple[str, _Proxy], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The ambiguous failure: the server committed entry #4, the answer never arrived. Appending it
    # again would record the action twice; assuming it failed would lose it. The append must find it.
    url, proxy = proxied_database
    monkeypatch.setenv("MLCTL_DB_URL", url)
    for i in range(3):
        audit.record(action="test.append", subject=f"s:{i}")
    get_engine().dispose()  # the locking path's pool reconnects (through the relay) after the drop
    proxy.armed.set()
    entry = audit.record(action="test.append", subject="s:3")
    assert proxy.dropped.is_set()
    assert entry.seq == 4
    audit.record(action="test.append", subject="s:4")
    assert _audited(5) == [f"s:{i}" for i in range(5)]


def test_only_the_append_pool_commits_without_flushing(pg_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Entries may commit without waiting for the disk (a signed head's commit flushes them before
    # it leaves the database); registry, release and signed-head transactions must not.
    monkeypatch.setenv("MLCTL_DB_URL", pg_database)
    audit.record(action="test.append", subject="s:0")
    with append_engine().connect() as conn:
        assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "off"
    with get_engine().connect() as conn:
        assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
    _audited(1)
