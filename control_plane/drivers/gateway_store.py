"""Each service's route on disk (``gateway/routes/<service>.json``): the source of truth that a
freshly started gateway loads, written atomically under a per-service lock."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from control_plane.drivers.gateway_addresses import gateway_dir


def record_path(service: str) -> Path:
    return gateway_dir() / "routes" / f"{service}.json"


@contextlib.contextmanager
def locked(service: str) -> Iterator[None]:
    """Serialize read-modify-write of one service's route (a release and its reaper may race)."""
    with (gateway_dir() / "routes" / f"{service}.lock").open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def read(service: str) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(record_path(service).read_text())
        return data
    except FileNotFoundError:
        return {}


def write(service: str, doc: dict[str, Any]) -> None:
    path = record_path(service)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, sort_keys=True))
    os.replace(tmp, path)  # atomic: a reader never sees half a route


def services() -> list[str]:
    return sorted(p.stem for p in (gateway_dir() / "routes").glob("*.json"))
