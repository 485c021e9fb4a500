"""Full verification over disjoint ranges of the log, the ranges checked side by side.

The log is cut into contiguous ranges at multiples of :data:`~control_plane.audit.scan.CHUNK`;
the first is checked in this process, the others each in a worker process (``python -c``, only the
connection parameters, the range, the head sizes and the seal key passed to it as JSON on stdin, so
it works the same from the CLI, from ``mlctl server``'s threads and under tests: nothing is forked).
A small log is one range, checked here. From the ranges' subtree roots this process rebuilds the
tree at every signed or anchored head's size, in log order, and judges each head as the sequential
walk does.

At the first problem (an entry missing, out of order or edited, a head that does not match, a seal
that fails) it resumes the sequential walk (:func:`~control_plane.audit.walk.walk_entries`) just
after the last signed head that matched, with the tree and counts as they were there: from that
point on the walk reads exactly what a walk from the first entry would, so it names the same entry
for the same reason. A worker that fails or hangs is reported in the notes and the log is verified
by the sequential walk instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from control_plane.audit import merkle, seal
from control_plane.audit.candidates import Candidate
from control_plane.audit.records import AuditReport
from control_plane.audit.scan import BOOT, CHUNK, RangeResult, cursor_batches, scan_range
from control_plane.audit.walk import Resume, Walk, judge, last_seq, walk_entries
from control_plane.settings import PROJECT_ROOT, audit_verify_parallel_from

MAX_WORKERS = 8
_AUDIT_DIR = str(Path(merkle.__file__).resolve().parent)


class WorkerFailed(Exception):
    pass


def cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def plan(last: int, workers: int) -> list[tuple[int, int | None]]:
    """``workers`` contiguous ranges ``(lo, hi]`` covering ``1..last`` (the last one open-ended),
    cut at multiples of CHUNK."""
    step = -(-last // workers)
    step = -(-step // CHUNK) * CHUNK
    bounds = list(range(0, last, step))[:workers] or [0]
    return [(lo, bounds[i + 1] if i + 1 < len(bounds) else None) for i, lo in enumerate(bounds)]


def _job(conn: Connection, lo: int, hi: int | None, checks: list[int], seal_after: int) -> str:
    cargs, cparams = conn.dialect.create_connect_args(conn.engine.url)
    # The driver's connection parameters as the engine passes them (host, database, user, TLS ...),
    # less the driver objects it adds (psycopg's adapters: a worker reads text and integers only).
    cparams = {k: v for k, v in cparams.items() if isinstance(v, str | int | float | bool)}
    if conn.dialect.name == "sqlite":
        cparams["timeout"] = 30
    return json.dumps({"dialect": conn.dialect.name, "cargs": list(cargs), "cparams": dict(cparams), "lo": lo,
                       "hi": hi, "checks": checks, "seal_after": seal_after, "seal_key": seal.key().hex()})


def _start(job: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH"))
                                                       if p)}
    try:
        proc = subprocess.Popen([sys.executable, "-c", BOOT, _AUDIT_DIR], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    except OSError as exc:
        raise WorkerFailed(f"a verification worker could not start ({exc})") from exc
    assert proc.stdin is not None
    try:
        proc.stdin.write(job.encode())  # the worker reads it all first: no deadlock on a full pipe
    except BrokenPipeError:
        pass  # it ended before reading its job: _collect reports its exit status and message
    finally:
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
    proc.stdin = None  # communicate() would flush it again
    return proc


def _collect(proc: subprocess.Popen[bytes], timeout: float) -> RangeResult:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise WorkerFailed(f"a verification worker did not finish within {timeout:.0f} s") from exc
    if proc.returncode != 0:
        last = err.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
        raise WorkerFailed(f"a verification worker failed (exit {proc.returncode}): {last[0]}")
    try:
        return RangeResult.from_json(out.decode())
    except (ValueError, KeyError, TypeError) as exc:
        raise WorkerFailed(f"a verification worker answered something unreadable ({exc})") from exc


def scan(conn: Connection, ranges: list[tuple[int, int | None]], sizes: list[int], seal_after: int) -> list[RangeResult]:
    """Check every range: the first here, the others in worker processes at the same time."""
    def checks(lo: int, hi: int | None) -> list[int]:
        return [s for s in sizes if s > lo and (hi is None or s <= hi)]

    procs: list[subprocess.Popen[bytes]] = []
    try:
        for lo, hi in ranges[1:]:
            procs.append(_start(_job(conn, lo, hi, checks(lo, hi), seal_after)))
        t = time.perf_counter()
        lo, hi = ranges[0]
        dbapi = conn.connection.driver_connection
        with contextlib.closing(cursor_batches(dbapi, conn.dialect.name == "postgresql", lo, hi)) as batches:
            first = scan_range(batches, lo, hi, checks(lo, hi), seal_after, seal.Sealer())
        timeout = 120 + 10 * (time.perf_counter() - t)  # the others have as much to do as the first
        return [first, *(_collect(p, timeout) for p in procs)]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def walk_parallel(conn: Connection, by_size: dict[int, list[Candidate]], anchored: dict[int, list[Any]],
                  report: AuditReport, workers: int | None = None) -> Walk:
    """:func:`~control_plane.audit.walk.walk_entries`' result and diagnosis, the ranges checked side
    by side (``workers``: default one per CPU for a log of at least MLCTL_AUDIT_VERIFY_PARALLEL_FROM
    entries, else one, in this process; 0: the sequential walk alone, the reference tests compare with)."""
    if workers == 0:
        return walk_entries(conn, by_size, anchored, report)
    last = last_seq(conn)
    if workers is None:
        threshold = audit_verify_parallel_from()
        workers = min(cpus(), MAX_WORKERS) if threshold and last >= threshold else 1
    in_memory = conn.dialect.name == "sqlite" and conn.engine.url.database in (None, "", ":memory:")
    ranges = plan(last, 1 if in_memory else max(1, workers))
    sizes = sorted(set(by_size) | set(anchored))
    seal_after = max((s for s in by_size if s <= last), default=0)
    try:
        results = scan(conn, ranges, sizes, seal_after)
    except WorkerFailed as exc:
        report.notes.append(f"{exc}: the log was verified in one process instead")
        return walk_entries(conn, by_size, anchored, report)
    return _merge(conn, results, sizes, by_size, anchored, report)


def _merge(conn: Connection, results: list[RangeResult], sizes: list[int], by_size: dict[int, list[Candidate]],
           anchored: dict[int, list[Any]], report: AuditReport) -> Walk:
    """Judge every head in log order from the ranges' subtrees; at the first problem resume the
    sequential walk after the last head that matched."""
    walk = Walk()
    chunks = merkle.CompactRange()  # the tree over whole chunks (each "leaf" a CHUNK subtree root)
    resume = Resume(Walk(), merkle.CompactRange(), 0)
    rows = 0
    for res in results:
        # Every range before this one was whole, so the tree so far ends exactly where it starts.
        assert chunks.size * CHUNK == res.lo
        used = 0
        for s in sizes:
            if not res.lo < s <= res.lo + res.good:
                continue
            while chunks.size < s // CHUNK:
                chunks.append(res.chunks[used])
                used += 1
            tree = merkle.CompactRange(s, chunks.peaks + res.tails[s])
            walk.size = s
            bad = judge(walk, tree.root().hex(), s, by_size, anchored, report)
            if bad:
                return walk_entries(conn, by_size, anchored, report, resume)
            if bad is not None:
                resume = Resume(replace(walk, anchor_mismatches=list(walk.anchor_mismatches)), tree.copy(),
                                report.heads_checked)
        for c in res.chunks[used:]:
            chunks.append(c)
        rows += res.rows
        if res.stopped or res.bad_seal is not None:
            return walk_entries(conn, by_size, anchored, report, resume)
    walk.size = results[-1].lo + results[-1].good
    report.entries = rows
    return walk
