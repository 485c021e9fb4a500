"""Benchmark: audit log appends (one transaction per entry) and full verification, on SQLite and
PostgreSQL, each next to a plain SHA-256 hash chain over the same bytes in the same run (the floor).

    .venv/bin/python bench/audit.py [--appends 3000] [--entries 1000000] [--backends sqlite,postgresql]
                                    [--output json]

1. Appends: ``audit.record`` exactly as mlctl calls it, one transaction per entry, heads batched
   (every 1,000 entries; the local development key signs). Floor: the same bytes appended to a plain
   SHA-256 chain table, one transaction per entry, in the same transaction shape as ours on each
   backend and with the same commit durability: on SQLite lock the head row, insert, update the
   head; on PostgreSQL one statement from the head this process last wrote (a data-modifying CTE,
   autocommit, synchronous_commit=off, the locking pattern only when it misses), as
   ``audit.append``'s fast path does. Goal >= 1,000 entries/s.
2. Verification of ``--entries`` entries (default 1 M, built with a bulk loader writing the exact
   format ``record`` writes, a head every 1,000 entries): ``audit.verify()`` (order, leaf hash,
   seal, Merkle tree, every signed head), which checks a log of at least
   MLCTL_AUDIT_VERIFY_PARALLEL_FROM entries (default 200,000) in one worker process per CPU over
   disjoint ranges. Floor: recompute a plain SHA-256 chain over the same bytes read from the
   database, single-threaded (a chain cannot be split): the ratio compares our wall time on every
   CPU with the floor's on one, so it is printed next to the CPU seconds each side used (ours: this
   process and its workers together) and the load average, which a shared machine shifts. Goal
   < 10 s for 1 M.
3. Inclusion proofs at that size: the first (which stores the 1024-leaf subtree roots the bulk-loaded
   log lacks; a log grown by ``record`` has them from its signed heads), then the median of five at
   other entries. Floor: the same proof from every leaf (read all leaf hashes, compute the path), as
   ``audit prove`` made it before stored subtree roots.

Everything runs in a temporary $MLCTL_HOME (and a throwaway PostgreSQL cluster) and is removed.
Ratios are ours / floor (appends: floor rate / our rate, so > 1 means slower than the floor).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pwd
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

HEAD_EVERY = 1000


def _fields(i: int, ts: str) -> dict[str, Any]:
    return {"ts": ts, "actor": "eli", "roles": ["ml-engineer"], "action": "release.transition",
            "subject": f"service/digits-{i % 50}", "decision": "allow", "reasons": [],
            "digests": {"model": "sha256:" + hashlib.sha256(str(i).encode()).hexdigest()},
            "details": {"release": f"r-{i // 12}", "from": "GREEN_READY", "to": "SMOKE_PASSED", "step": i % 12},
            "host": "bench-host", "identity": {"actor": "eli", "method": "asserted", "roles": ["ml-engineer"]}}


# --- the floor: a plain SHA-256 chain, same bytes, same transaction shape ---

FLOOR_DDL = [
    "CREATE TABLE bench_chain (seq INTEGER PRIMARY KEY, ts VARCHAR(40), actor VARCHAR(200), roles TEXT, "
    "action VARCHAR(100), subject VARCHAR(500), decision VARCHAR(20), reasons TEXT, digests TEXT, details TEXT, "
    "host VARCHAR(255), identity TEXT, entry_hash VARCHAR(64))",
    "CREATE TABLE bench_chain_head (id INTEGER PRIMARY KEY, seq INTEGER, entry_hash VARCHAR(64))",
    "INSERT INTO bench_chain_head VALUES (1, 0, '" + "0" * 64 + "')",
]
FLOOR_COLS = ("action", "actor", "decision", "details", "digests", "host", "identity", "reasons", "roles", "seq",
              "subject", "ts")


def _floor_setup(engine: Any) -> None:
    import sqlalchemy as sa

    with engine.begin() as conn:
        for stmt in FLOOR_DDL:
            conn.execute(sa.text(stmt))


_FLOOR_ROW = ("seq", "ts", "actor", "roles", "action", "subject", "decision", "reasons", "digests", "details", "host",
              "identity", "entry_hash")
# The floor's one-statement append on PostgreSQL, the shape of audit.append's fast path: move the
# chain head from the one this process last wrote and insert the entry, or nothing if it moved.
_FLOOR_FAST = ("WITH h AS (UPDATE bench_chain_head SET seq = %(seq)s, entry_hash = %(entry_hash)s "  # noqa: S608
               "WHERE id = 1 AND seq = %(seq)s - 1 AND entry_hash = %(prev)s RETURNING seq) "
               "INSERT INTO bench_chain SELECT "
               + ", ".join("h.seq" if c == "seq" else f"CAST(%({c})s AS TEXT)" for c in _FLOOR_ROW) + " FROM h")
_floor_head: dict[Any, tuple[int, str]] = {}  # engine -> (seq, entry_hash) the floor last wrote


def _floor_append(engine: Any, fields: dict[str, Any]) -> None:
    import sqlalchemy as sa

    from control_plane.audit.entry import HASHED_FIELDS, leaf_data, stored_columns
    from control_plane.store.db import append_engine

    known = _floor_head.get(engine)
    if engine.dialect.name == "postgresql" and known is not None:
        # Like ours on PostgreSQL: one statement in its own transaction, sent on the pooled DBAPI
        # connection of the same pool (autocommit, synchronous_commit=off from connect, no pre-ping).
        seq, prev = known[0] + 1, known[1]
        cols = stored_columns({**fields, "seq": seq})
        h = hashlib.sha256(prev.encode() + leaf_data([cols[f] for f in HASHED_FIELDS])).hexdigest()
        conn = append_engine().raw_connection()
        try:
            cur = conn.cursor()
            cur.execute(_FLOOR_FAST, {**cols, "seq": seq, "entry_hash": h, "prev": prev})
            appended = cur.rowcount == 1
            cur.close()
        finally:
            conn.close()
        if appended:
            _floor_head[engine] = (seq, h)
            return
    with engine.begin() as conn:  # the locking pattern (SQLite, and a PostgreSQL miss)
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")  # the same durability as ours
        seq, prev = conn.execute(sa.text("UPDATE bench_chain_head SET seq = seq + 1 WHERE id = 1 "
                                         "RETURNING seq, entry_hash")).one()
        cols = stored_columns({**fields, "seq": seq})
        h = hashlib.sha256(prev.encode() + leaf_data([cols[f] for f in HASHED_FIELDS])).hexdigest()
        conn.execute(sa.text("INSERT INTO bench_chain VALUES (:seq, :ts, :actor, :roles, :action, :subject, "
                             ":decision, :reasons, :digests, :details, :host, :identity, :entry_hash)"),
                     {**cols, "entry_hash": h})
        conn.execute(sa.text("UPDATE bench_chain_head SET entry_hash = :h WHERE id = 1"), {"h": h})
    _floor_head[engine] = (seq, h)


def _floor_verify(engine: Any) -> int:
    from control_plane.audit.entry import leaf_data

    sql = f"SELECT {', '.join(FLOOR_COLS)}, entry_hash FROM bench_chain ORDER BY seq"  # noqa: S608
    n, prev = 0, "0" * 64
    with engine.connect() as conn:
        dbapi = conn.connection.driver_connection
        cur = dbapi.cursor(name="bench_floor") if conn.dialect.name == "postgresql" else dbapi.cursor()
        cur.execute(sql)
        sha256 = hashlib.sha256
        while batch := cur.fetchmany(20_000):
            for row in batch:
                h = sha256(prev.encode() + leaf_data(row)).hexdigest()
                if h != row[12]:
                    raise SystemExit(f"floor chain broken at #{row[9]}")
                prev = h
                n += 1
        cur.close()
    return n


# --- bulk loading both logs with `entries` entries (the exact format record() writes) ---

def _bulk_load(engine: Any, entries: int, ts: str) -> None:
    import sqlalchemy as sa

    from control_plane.audit import heads, merkle, seal
    from control_plane.audit.entry import HASHED_FIELDS, leaf_data, stored_columns

    key = seal.key()
    tree = merkle.CompactRange()
    prev = "0" * 64
    batch, floor_batch, head_rows, last_head = [], [], [], None
    insert = sa.text("INSERT INTO audit_entries (seq, ts, actor, roles, action, subject, decision, reasons, digests, "
                     "details, host, identity, leaf_hash, seal) VALUES (:seq, :ts, :actor, :roles, :action, :subject, "
                     ":decision, :reasons, :digests, :details, :host, :identity, :leaf_hash, :seal)")
    floor_insert = sa.text("INSERT INTO bench_chain VALUES (:seq, :ts, :actor, :roles, :action, :subject, :decision, "
                           ":reasons, :digests, :details, :host, :identity, :entry_hash)")
    base = engine.connect().execute(sa.text("SELECT seq FROM audit_head WHERE id = 1")).scalar()
    assert base == 0, "bulk load needs an empty log"
    signer = heads.signer()
    t0, done = time.perf_counter(), 0

    def flush() -> None:
        nonlocal batch, floor_batch, head_rows
        if not batch:
            return
        with engine.begin() as conn:
            conn.execute(insert, batch)
            conn.execute(floor_insert, floor_batch)
            if head_rows:
                conn.execute(sa.text("INSERT INTO audit_tree_heads (size, root, ts, head) VALUES (:size, :root, :ts, "
                                     ":head)"), head_rows)
        batch, floor_batch, head_rows = [], [], []

    for seq in range(1, entries + 1):
        cols = stored_columns({**_fields(seq, ts), "seq": seq})
        data = leaf_data([cols[f] for f in HASHED_FIELDS])
        leaf = merkle.leaf_hash(data)
        tree.append(leaf)
        batch.append({**cols, "leaf_hash": leaf.hex(), "seal": seal.seal(leaf, key)})
        prev = hashlib.sha256(prev.encode() + data).hexdigest()
        floor_batch.append({**cols, "entry_hash": prev})
        if seq % HEAD_EVERY == 0 or seq == entries:
            last_head = heads.sign(seq, tree.root(), ts, with_signer=signer)
            heads.write_local(last_head)
            head_rows.append({"size": seq, "root": last_head.root, "ts": ts, "head": last_head.to_json()})
        if len(batch) >= 20_000:
            flush()
            done = seq
            print(f"  loaded {done:,}/{entries:,} entries ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    flush()
    assert last_head is not None
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_head SET seq = :n, peaks = :p, signed_size = :n, signed_at = :ts, "
                             "checkpoint = :c WHERE id = 1"),
                     {"n": entries, "p": json.dumps([p.hex() for p in tree.peaks]), "ts": ts, "c": last_head.to_json()})
        conn.execute(sa.text("UPDATE bench_chain_head SET seq = :n, entry_hash = :h WHERE id = 1"),
                     {"n": entries, "h": prev})


# --- backends ---

@contextmanager
def _postgres() -> Iterator[str]:
    """A throwaway PostgreSQL cluster with its default durability (fsync on)."""
    bindir = None
    for cand in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (cand / "initdb").exists():
            bindir = cand
            break
    if bindir is None:
        raise SystemExit("PostgreSQL server binaries not found (apt-get install postgresql)")
    from control_plane.emulator import processes

    base = Path(tempfile.mkdtemp(prefix="mlctl-bench-pg-"))
    port = processes.free_port()
    prefix: list[str] = []
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(base, pw.pw_uid, pw.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(base / "data"), "-U", "mlctl", "--auth=trust"],
                   check=True, capture_output=True)
    subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(base / "data"), "-l", str(base / "pg.log"), "-w", "-o",
                    f"-p {port} -k {base} -c listen_addresses=127.0.0.1", "start"], check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://mlctl@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(base / "data"), "-m", "fast", "stop"],
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@contextmanager
def _home(url: str | None) -> Iterator[str]:
    home = Path(tempfile.mkdtemp(prefix="mlctl-bench-audit-"))
    os.environ["MLCTL_HOME"] = str(home)
    os.environ["MLCTL_DB_URL"] = url or f"sqlite:///{home / 'mlctl.db'}"
    from control_plane.store import db

    db.reset_engines()
    try:
        yield os.environ["MLCTL_DB_URL"]
    finally:
        db.reset_engines()
        shutil.rmtree(home, ignore_errors=True)


def _fresh_pg_db(server: str, name: str) -> str:
    import sqlalchemy as sa

    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return server.rsplit("/", 1)[0] + "/" + name


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (verification's workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _verify_workers(entries: int) -> int:
    from control_plane.audit import parallel
    from control_plane.settings import audit_verify_parallel_from

    threshold = audit_verify_parallel_from()
    return min(parallel.cpus(), parallel.MAX_WORKERS) if threshold and entries >= threshold else 1


def _measure(backend: str, url: str | None, appends: int, entries: int) -> dict[str, Any]:
    from control_plane import audit
    from control_plane.store import get_engine

    out: dict[str, Any] = {"backend": backend}
    os.environ["MLCTL_AUDIT_HEAD_EVERY"] = str(HEAD_EVERY)
    os.environ["MLCTL_AUDIT_HEAD_SECONDS"] = "3600"
    os.environ["MLCTL_AUDIT_ANCHOR"] = "off"
    with _home(url if backend == "sqlite" else _fresh_pg_db(url or "", "bench_appends")):
        engine = get_engine()
        _floor_setup(engine)
        audit.record(action="bench.warmup", subject="x")
        _floor_append(engine, _fields(0, "2026-12-01T00:00:00.000000Z"))
        rounds: list[tuple[float, float]] = []
        for _ in range(3):  # interleaved rounds: load on a shared machine hits both sides alike
            t = time.perf_counter()
            for i in range(appends // 3):
                audit.record(action="release.transition", subject=f"service/digits-{i % 50}",
                             digests={"model": "sha256:" + "ab" * 32}, details={"step": i})
            ours = time.perf_counter() - t
            t = time.perf_counter()
            for i in range(appends // 3):
                _floor_append(engine, _fields(i, audit.trail._now()))
            rounds.append((ours, time.perf_counter() - t))
        n = 3 * (appends // 3)
        ours_t, floor_t = sum(r[0] for r in rounds), sum(r[1] for r in rounds)
        out["append_per_s"] = n / ours_t
        out["append_floor_per_s"] = n / floor_t
        out["append_ratio"] = ours_t / floor_t
        report = audit.verify()
        assert report.ok, report.problems
        out["heads_signed_during_appends"] = len(audit.signed_heads())
    if entries:
        with _home(url if backend == "sqlite" else _fresh_pg_db(url or "", "bench_verify")):
            engine = get_engine()
            _floor_setup(engine)
            t = time.perf_counter()
            _bulk_load(engine, entries, "2026-12-01T00:00:00.000000Z")
            out["bulk_load_s"] = time.perf_counter() - t
            ours_s, floor_s, ours_cpu, floor_cpu = [], [], [], []
            for _ in range(2):  # interleaved, best of two: load on a shared machine hits both sides alike
                t, cpu = time.perf_counter(), _cpu_s()
                report = audit.verify()
                ours_s.append(time.perf_counter() - t)
                ours_cpu.append(_cpu_s() - cpu)
                assert report.ok and report.entries == entries, report.problems
                t, cpu = time.perf_counter(), _cpu_s()
                assert _floor_verify(engine) == entries
                floor_s.append(time.perf_counter() - t)
                floor_cpu.append(_cpu_s() - cpu)
            out["verify_s"], out["verify_floor_s"] = min(ours_s), min(floor_s)
            out["verify_cpu_s"], out["verify_floor_cpu_s"] = min(ours_cpu), min(floor_cpu)
            out["verify_workers"] = _verify_workers(entries)
            out["verify_load_average"] = os.getloadavg()
            out["verify_heads_checked"] = report.heads_checked
            out["verify_ratio"] = out["verify_s"] / out["verify_floor_s"]
            out["verify_entries"] = entries
            out["verify_per_s"] = entries / out["verify_s"]
            out.update(_measure_proofs(engine, entries))
    return out


def _measure_proofs(engine: Any, entries: int) -> dict[str, float]:
    """Inclusion proofs at ``entries``: the first (it stores the log's 1024-leaf subtree roots: a
    bulk-loaded log has none), then the median of five at other entries, next to the floor: the
    proof from every leaf (read them all, compute the path), as `audit prove` did before stored roots."""
    import sqlalchemy as sa

    from control_plane import audit
    from control_plane.audit import merkle

    t = time.perf_counter()
    assert audit.prove(entries // 2)["verified"]
    first = time.perf_counter() - t
    warm, floor = [], []
    for k in range(5):
        seq = 1 + (entries * (2 * k + 1)) // 11
        t = time.perf_counter()
        got = audit.prove(seq)
        warm.append(time.perf_counter() - t)
        t = time.perf_counter()
        with engine.connect() as conn:
            leaves = [bytes.fromhex(h) for h in conn.execute(sa.text(
                "SELECT leaf_hash FROM audit_entries WHERE seq <= :n ORDER BY seq"), {"n": got["tree_size"]}).scalars()]
        path = merkle.inclusion_proof(leaves, seq - 1, got["tree_size"])
        floor.append(time.perf_counter() - t)
        assert got["inclusion_path"] == [p.hex() for p in path]
    warm.sort()
    floor.sort()
    return {"prove_first_s": first, "prove_s": warm[2], "prove_floor_s": floor[2], "prove_ratio": warm[2] / floor[2]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--appends", type=int, default=3000, help="appends measured per side (one transaction each)")
    ap.add_argument("--entries", type=int, default=1_000_000, help="entries in the log verified (0: skip)")
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--output", choices=["table", "json"], default="table")
    args = ap.parse_args()
    results = []
    for backend in args.backends.split(","):
        print(f"{backend}: measuring ...", file=sys.stderr)
        if backend == "postgresql":
            with _postgres() as server:
                results.append(_measure(backend, server, args.appends, args.entries))
        elif backend == "sqlite":
            results.append(_measure(backend, None, args.appends, args.entries))
        else:
            raise SystemExit(f"unknown backend {backend!r}: use sqlite and/or postgresql")
        if args.output == "table":
            _print(results[-1])  # as soon as it is measured: a long run keeps what it finished
    if args.output == "json":
        print(json.dumps({"results": results, "load_average_1m": os.getloadavg()[0], "cpus": os.cpu_count()},
                         indent=2))
    return 0


def _print(r: dict[str, Any]) -> None:
    print(f"\n[{r['backend']}]  ({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f})")
    print(f"  appends, 1 transaction each : {r['append_per_s']:8.0f} /s   plain SHA-256 chain "
          f"{r['append_floor_per_s']:8.0f} /s   time ratio {r['append_ratio']:.2f}x   (goal >= 1,000/s; "
          f"{r['heads_signed_during_appends']} heads signed)")
    if "verify_s" in r:
        print(f"  verify {r['verify_entries']:,} entries : {r['verify_s']:8.2f} s    plain SHA-256 chain "
              f"{r['verify_floor_s']:8.2f} s    time ratio {r['verify_ratio']:.2f}x   ({r['verify_per_s']:,.0f} "
              f"entries/s; goal < 10 s for 1 M; {r['verify_heads_checked']} heads checked)")
        print(f"    ours on {r['verify_workers']} process(es): {r['verify_cpu_s']:.2f} CPU s in all; the floor, "
              f"single-threaded: {r['verify_floor_cpu_s']:.2f} CPU s; load average "
              f"{' '.join(f'{x:.1f}' for x in r['verify_load_average'])} on {os.cpu_count()} CPUs")
        print(f"  inclusion proof at that size: {r['prove_s'] * 1000:8.1f} ms   from every leaf "
              f"{r['prove_floor_s'] * 1000:8.1f} ms   time ratio {r['prove_ratio']:.3f}x   (median of 5; the first, "
              f"storing the subtree roots, {r['prove_first_s']:.2f} s; bulk load {r['bulk_load_s']:.0f} s, not timed)")
    sys.stdout.flush()


if __name__ == "__main__":
    raise SystemExit(main())
