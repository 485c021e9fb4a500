"""Verification's fast path: one contiguous range of the log checked batch by batch, in this
process or in a worker process, handing back what the Merkle tree needs from it.

A range ``(lo, hi]`` (``lo`` a multiple of :data:`CHUNK`) is read in log order; per batch, the
sequence numbers are checked by their ends (unique and increasing, so first and last right means
all right), the leaf hashes are rebuilt with :func:`~control_plane.audit.entry.leaf_data` exactly as
the sequential walk does and compared in one string comparison per batch, and the leaves are folded
into aligned subtrees of :data:`CHUNK` leaves with one list comprehension per tree level. The range
hands back those subtree roots and, at each size where a signed or anchored head must be compared,
the peaks of its partial subtree: the parent rebuilds the exact tree at every head's size from them
(:mod:`control_plane.audit.parallel`). It does not diagnose: at the first entry out of order or with
another hash it stops and says where, and the sequential walk, resumed at the last signed head
that matched before it, names the entry exactly as it always has.

A worker process is started as ``python -c BOOT``: it imports only this module, the leaf format and
the tree (not the whole package), reads its job as JSON on stdin and writes its result on stdout.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import sys
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from control_plane.audit import merkle, seal
from control_plane.audit.entry import HASHED_FIELDS, leaf_data

CHUNK = 1024  # leaves per aligned subtree a range hands back; ranges start at multiples of it
BATCH = 20_000
COLUMNS = f"{', '.join(HASHED_FIELDS)}, leaf_hash, seal"
SEQ, LEAF, SEAL = 9, 12, 13  # positions in a row of COLUMNS


@dataclass
class RangeResult:
    lo: int  # entries before the range
    good: int = 0  # entries #lo+1.. read in order with their leaf hash right
    rows: int = 0  # rows read (the sequential walk counts every row it reads)
    chunks: list[bytes] = field(default_factory=list)  # roots of the complete CHUNK subtrees of the good entries
    tails: dict[int, list[bytes]] = field(default_factory=dict)  # head size -> peaks after its last complete chunk
    stopped: bool = False  # entry #lo+good+1 is missing, out of order or has another hash
    bad_seal: int | None = None  # the first entry after ``seal_after`` whose seal does not verify

    def to_json(self) -> str:
        return json.dumps({"lo": self.lo, "good": self.good, "rows": self.rows, "stopped": self.stopped,
                           "bad_seal": self.bad_seal, "chunks": [c.hex() for c in self.chunks],
                           "tails": {str(k): [p.hex() for p in v] for k, v in self.tails.items()}})

    @classmethod
    def from_json(cls, text: str) -> RangeResult:
        d = json.loads(text)
        return cls(lo=d["lo"], good=d["good"], rows=d["rows"], stopped=d["stopped"], bad_seal=d["bad_seal"],
                   chunks=[bytes.fromhex(c) for c in d["chunks"]],
                   tails={int(k): [bytes.fromhex(p) for p in v] for k, v in d["tails"].items()})


def range_sql(lo: int, hi: int | None, param: str) -> tuple[str, tuple[int, ...]]:
    """The rows of ``(lo, hi]`` in log order. The first range has no lower bound and the last no
    upper one, so a row numbered outside ``1..last`` is read (and stops the scan) as it would be
    by the sequential walk."""
    where, args = [], []
    if lo:
        where.append(f"seq > {param}")
        args.append(lo)
    if hi is not None:
        where.append(f"seq <= {param}")
        args.append(hi)
    cond = f" WHERE {' AND '.join(where)}" if where else ""
    # Built from constant column names and placeholders only (no input reaches it).
    return f"SELECT {COLUMNS} FROM audit_entries{cond} ORDER BY seq", tuple(args)  # noqa: S608


def _good_prefix(batch: Sequence[Any], expected: int) -> tuple[list[bytes], bool]:
    """The leaf hashes of the batch's rows up to the first that is out of place or does not
    match its stored hash; True when the batch stops early. The whole batch is tried at once
    first (the common case), row by row only to find where it goes wrong."""
    sha256 = hashlib.sha256
    n = len(batch)
    try:
        if batch[0][SEQ] == expected and batch[-1][SEQ] == expected + n - 1:
            leaves = [sha256(b"\x00" + leaf_data(r)).digest() for r in batch]
            # Comma-separated on both sides: a stored hash one character short with the next one
            # character long cannot line up (a comma is no hex digit, and there are as many).
            if b"".join(leaves).hex(",", 32) == ",".join([r[LEAF] for r in batch]):
                return leaves, False
    except (TypeError, ValueError, AttributeError):
        pass  # a null or odd value somewhere: found below
    leaves = []
    for i, row in enumerate(batch):
        try:
            if row[SEQ] != expected + i:
                break
            leaf = sha256(b"\x00" + leaf_data(row)).digest()
        except (TypeError, ValueError, AttributeError):
            break
        if leaf.hex() != row[LEAF]:
            break
        leaves.append(leaf)
    return leaves, True


class _Chunks:
    """Folds leaves into CHUNK-leaf subtrees, noting the partial peaks at each head size."""

    def __init__(self, lo: int, checks: Sequence[int], result: RangeResult) -> None:
        self.base, self.checks, self.result = lo, checks, result
        self.buf: list[bytes] = []

    def add(self, leaves: list[bytes]) -> None:
        pos = 0
        while pos < len(leaves):
            take = min(CHUNK - len(self.buf), len(leaves) - pos)
            self.buf.extend(leaves[pos:pos + take])
            pos += take
            if len(self.buf) == CHUNK:
                self._close(full=True)

    def finish(self) -> None:
        if self.buf:
            self._close(full=False)

    def _close(self, full: bool) -> None:
        levels = merkle.pyramid(self.buf)
        end = self.base + len(self.buf)
        lo_i = bisect.bisect_right(self.checks, self.base)
        hi_i = bisect.bisect_right(self.checks, end)
        for s in self.checks[lo_i:hi_i]:
            k = s - self.base
            self.result.tails[s] = [] if k == CHUNK else merkle.peaks_at(levels, k)
        if full:
            self.result.chunks.append(levels[-1][0])
            self.base, self.buf = end, []


def scan_range(batches: Iterator[Sequence[Any]], lo: int, hi: int | None, checks: Sequence[int], seal_after: int,
               sealer: seal.Sealer) -> RangeResult:
    """Check the entries of ``(lo, hi]`` read from ``batches`` (``hi`` None: to the end); ``checks``
    are the sorted head sizes in the range; seals are checked for entries after ``seal_after``."""
    result = RangeResult(lo=lo)
    tree = _Chunks(lo, checks, result)
    expected = lo + 1
    for batch in batches:
        result.rows += len(batch)
        leaves, stopped = _good_prefix(batch, expected)
        if result.bad_seal is None and expected + len(leaves) - 1 > seal_after:
            for i in range(max(0, seal_after - expected + 1), len(leaves)):
                if sealer.hexdigest(leaves[i]) != batch[i][SEAL]:
                    result.bad_seal = expected + i
                    break
        tree.add(leaves)
        expected += len(leaves)
        if stopped:
            result.stopped = True
            break
    tree.finish()
    result.good = expected - lo - 1
    if hi is not None and not result.stopped and expected <= hi:
        result.stopped = True  # the range ends before its last entry: entries deleted at its end
    return result


def cursor_batches(dbapi: Any, postgres: bool, lo: int, hi: int | None) -> Generator[Sequence[Any], None, None]:
    """The range's rows straight from the DB-API connection: a server-side cursor on PostgreSQL."""
    sql, args = range_sql(lo, hi, "%s" if postgres else "?")
    cur = dbapi.cursor(name=f"mlctl_audit_range_{lo}") if postgres else dbapi.cursor()
    try:
        cur.execute(sql, args)
        while batch := cur.fetchmany(BATCH):
            yield batch
    finally:
        cur.close()


# --- the worker process ---

BOOT = (
    # The package's __init__ imports the whole audit trail (SQLAlchemy, signing, ...): a worker needs
    # three modules, so it registers the package without running it and imports those alone.
    "import sys, types; pkg = types.ModuleType('control_plane.audit'); pkg.__path__ = [sys.argv[1]]; "
    "sys.modules['control_plane.audit'] = pkg; from control_plane.audit.scan import serve; serve()"
)


def _connect(job: dict[str, Any]) -> Any:
    if job["dialect"] == "postgresql":
        import psycopg  # the driver the engine uses; only a PostgreSQL worker needs it

        return psycopg.connect(*job["cargs"], **job["cparams"])
    import sqlite3

    return sqlite3.connect(*job["cargs"], **job["cparams"])


def serve() -> None:
    """A worker: one job (JSON on stdin: connection, range, head sizes, seal key) to one result."""
    job = json.loads(sys.stdin.read())
    conn = _connect(job)
    try:
        postgres = job["dialect"] == "postgresql"
        result = scan_range(cursor_batches(conn, postgres, job["lo"], job["hi"]), job["lo"], job["hi"], job["checks"],
                            job["seal_after"], seal.Sealer(bytes.fromhex(job["seal_key"])))
    finally:
        conn.close()
    sys.stdout.write(result.to_json())
    sys.stdout.flush()
