"""The request log of a deployed service: where model servers write it and in which format.

Model servers append one JSON object per inference request to
``$MLCTL_HOME/serving/<service>/requests.jsonl`` (or ``$MLCTL_SERVING_LOG_DIR/<service>/...``):

```json
{"ts": "2026-11-27T10:00:00Z", "service": "digits", "model": "digits", "version": "3",
 "inputs": ..., "outputs": ...}
```

``inputs`` and ``outputs`` each take one of three shapes:

- one row: ``{"feature": value, ...}``;
- a batch: ``[{"feature": value, ...}, ...]``;
- V2 protocol tensors: ``[{"name": "input", "shape": [n, k], "datatype": "FP32", "data": [...]}]``;
  column ``j`` of a tensor becomes ``<name>_<j>`` (``<name>`` when k == 1), or the names given
  in an optional top-level ``"feature_names": [...]`` for the input tensor.

An output tensor with several columns (class probabilities) becomes ``prediction`` = argmax; a
single output column or an output field named ``prediction`` is used as is. Lines that do not
parse are counted and skipped, never fatal (a server may be writing the last line right now).

What is written is minimised first and kept for a limited time (``log_policy``: configured
features only, PII-tagged fields dropped or hashed, detected identifiers redacted, retention by
age and line count); ``RequestLogWriter`` is the one writer.

A leaf below the serving drivers (the local model server writes it, shadow comparison reads
``records_since``) and monitoring (``control_plane.monitor.request_log`` reads windows of it as
tables for drift): neither depends on the other.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from control_plane.request_log.policy import load_policy, minimise_inputs
from control_plane.settings import current as settings
from control_plane.settings import mlctl_home

__all__ = ["RequestLogWriter", "log_path", "records_since"]


class RequestLogWriter:
    """Appends minimised records to a service's request log and enforces its retention.

    Several servers (both colours) append to one file: every append and every prune holds an
    exclusive ``flock`` on the log, and a writer whose file was replaced by a prune reopens it, so
    no line is lost or written to a deleted file. Pruning runs at start and every ``prune_every``
    writes."""

    def __init__(self, service: str, model: str | None, version: str | None, *, colour: str | None = None,
                 prune_every: int = 1000) -> None:
        self.path = log_path(service)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.policy = load_policy(service)
        self._head = {"service": service, "model": model, "version": version, "colour": colour}
        self._prune_every = prune_every
        self._writes = 0
        self._fd = self._open()
        self.prune()

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def _locked(self) -> Any:
        @contextlib.contextmanager
        def lock() -> Any:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                try:
                    same = os.fstat(self._fd).st_ino == os.stat(self.path).st_ino
                except FileNotFoundError:
                    same = False
                if not same:  # pruned (replaced) by another writer: append to the new file
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
                    os.close(self._fd)
                    self._fd = self._open()
                    fcntl.flock(self._fd, fcntl.LOCK_EX)
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

        return lock()

    def write(self, inputs: Any, outputs: Any, **extra: Any) -> None:
        """``extra``: what a shadow comparison joins on (request id, mirror flag, status, seconds);
        ``t`` (epoch seconds) is what it windows on."""
        now = datetime.now(tz=UTC)
        record = {"ts": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "t": now.timestamp(), **self._head, **extra,
                  "inputs": minimise_inputs(self.policy, inputs), "outputs": outputs}
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        with self._locked():
            os.write(self._fd, line)
        self._writes += 1
        if self._writes % self._prune_every == 0:
            self.prune()

    def prune(self) -> int:
        """Drop lines older than the retention and beyond ``max_lines``; returns how many."""
        cutoff = datetime.now(UTC) - timedelta(days=self.policy.retention_days)
        with self._locked():
            lines = self.path.read_bytes().splitlines(keepends=True)
            kept = [ln for ln in lines if _newer_than(ln, cutoff)][-self.policy.max_lines:]
            dropped = len(lines) - len(kept)
            if dropped:
                tmp = self.path.with_name(self.path.name + ".prune")
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.writelines(kept)
                os.replace(tmp, self.path)  # writers see the new inode under the lock and reopen
        return dropped


def _newer_than(line: bytes, cutoff: datetime) -> bool:
    try:
        ts = datetime.fromisoformat(str(json.loads(line)["ts"]).replace("Z", "+00:00"))
    except (ValueError, KeyError, TypeError):
        return False  # an unreadable line is not kept past a prune
    return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)) >= cutoff


def log_path(service: str) -> Path:
    root = settings().serving_log_dir or mlctl_home() / "serving"
    return root / service / "requests.jsonl"


# Two servers append to one log, each stamping a line when its request ends: lines are only
# roughly in time order, so the backwards scan reads this far past the window's start.
_SLACK = 10.0


def records_since(service: str, since: float) -> list[dict[str, Any]]:
    """Raw records written at or after ``since`` (epoch seconds) that carry a request id: what a
    shadow comparison joins per colour. Reads from the end of the log backwards in blocks, so a
    long-lived log costs only the window's lines."""
    path = log_path(service)
    if not path.is_file():
        return []
    out: list[dict[str, Any]] = []
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        pos, tail, done = fh.tell(), b"", False
        while pos > 0 and not done:
            step = min(1 << 20, pos)
            pos -= step
            fh.seek(pos)
            chunk = fh.read(step) + tail
            lines = chunk.split(b"\n")
            tail = lines[0] if pos > 0 else b""
            for raw in reversed(lines[1:] if pos > 0 else lines):
                if not raw.strip():
                    continue
                try:
                    rec = json.loads(raw)
                except ValueError:
                    continue  # a line being written right now
                t = rec.get("t")
                if not isinstance(t, int | float):
                    continue  # written before request ids were logged
                if t < since - _SLACK:
                    done = True
                    break
                if t >= since and rec.get("request_id"):
                    out.append(rec)
    out.reverse()
    return out
