"""The release store: release rows, the per-service lock, the transition history and what is live.

Everything that reads or writes the release tables goes through here, so the engine and the
strategies speak in rows and typed values, never in SQL or JSON text. The JSON columns
(``config``, ``deployment``, ``analysis``, ``reasons``, ``baseline``) have one typed accessor
each (``config_of(row)`` ...) and, where the engine appends to them, one writer.

One release per service: the ``release_locks`` row is inserted with the release in one
transaction (the primary key makes it atomic) and deleted when the release ends. The row names
the process driving the release (``host:pid``); :func:`claim` refuses while that process is alive.
"""

from __future__ import annotations

import json
import os
import socket
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from control_plane.drivers.base import Deployment
from control_plane.emulator.processes import is_alive
from control_plane.errors import Conflict, NotFound
from control_plane.release import record
from control_plane.release.config import ReleaseConfig
from control_plane.release.models import LiveServiceRow, ReleaseRow, ServiceLockRow, TransitionRow
from control_plane.store import session_scope


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


# -- the lock's holder ------------------------------------------------------------------------
def holder() -> str:
    """This process, as a lock names it."""
    return f"{socket.gethostname()}:{os.getpid()}"


def holder_alive(name: str) -> bool:
    host, _, pid = name.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine: we cannot tell; treat as gone (resume is explicit)
    return int(pid) != os.getpid() and is_alive(int(pid))


# -- reading ----------------------------------------------------------------------------------
def load(session: Session, release_id: str) -> ReleaseRow:
    """The release row in ``session`` (to change it in that transaction); NotFound if unknown."""
    row = session.get(ReleaseRow, release_id)
    if row is None:
        raise NotFound(f"release {release_id} does not exist", hint="see `mlctl release status SERVICE`")
    return row


def get(release_id: str) -> ReleaseRow:
    """A detached copy of the release row as committed now."""
    with session_scope() as s:
        row = load(s, release_id)
        s.expunge(row)
        return row


def active_release(service: str) -> ReleaseRow | None:
    with session_scope() as s:
        lock = s.get(ServiceLockRow, service)
        if lock is None:
            return None
        return s.get(ReleaseRow, lock.release_id)


def latest_release(service: str) -> ReleaseRow | None:
    with session_scope() as s:
        return s.scalars(
            select(ReleaseRow).where(ReleaseRow.service == service).order_by(ReleaseRow.created_at.desc())
        ).first()


def live(service: str) -> LiveServiceRow | None:
    with session_scope() as s:
        return s.get(LiveServiceRow, service)


def transitions(release_id: str) -> list[TransitionRow]:
    with session_scope() as s:
        return list(
            s.scalars(
                select(TransitionRow).where(TransitionRow.release_id == release_id).order_by(TransitionRow.id)
            )
        )


def requested(release_id: str) -> str | None:
    """A person's pending decision on the release (``promote`` | ``abort``), if any."""
    with session_scope() as s:
        return load(s, release_id).requested


# -- typed accessors for the JSON columns -------------------------------------------------------
def config_of(row: ReleaseRow) -> ReleaseConfig:
    return ReleaseConfig.from_dict(json.loads(row.config))


def deployment_of(row: ReleaseRow) -> Deployment:
    return Deployment.from_dict(json.loads(row.deployment))


def reasons_of(row: ReleaseRow) -> list[str]:
    reasons: list[str] = json.loads(row.reasons or "[]")
    return reasons


def analysis_of(row: ReleaseRow) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads(row.analysis or "[]")
    return entries


def baseline_of(row: ReleaseRow) -> dict[str, Any] | None:
    """The open analysis window (``name``, start ``t``, metrics at the start), if any."""
    base: dict[str, Any] | None = json.loads(row.baseline) if row.baseline else None
    return base


def set_deployment(row: ReleaseRow, dep: Deployment) -> None:
    row.digest, row.deployment = dep.digest, json.dumps(dep.to_dict())


def set_baseline(row: ReleaseRow, base: dict[str, Any] | None) -> None:
    row.baseline = None if base is None else json.dumps(base)


def add_reasons(row: ReleaseRow, reasons: list[str]) -> None:
    row.reasons = json.dumps([*reasons_of(row), *reasons])


def add_analysis(row: ReleaseRow, entry: dict[str, Any]) -> None:
    row.analysis = json.dumps([*analysis_of(row), entry])


def record_analysis(release_id: str, entry: dict[str, Any]) -> None:
    with session_scope() as s:
        add_analysis(load(s, release_id), entry)


# -- the release and its lock -------------------------------------------------------------------
def create(row: ReleaseRow, *, details: dict[str, Any]) -> None:
    """Insert the release with its service's lock and its ``release.create`` audit entry (one
    transaction); Conflict when the service already has a release in progress."""
    try:
        with session_scope() as s:
            s.add(ServiceLockRow(service=row.service, release_id=row.id, holder=holder(), acquired_at=row.created_at))
            s.flush()
            s.add(row)
            record.audit(s, "release.create", row.service, row.id, details=details)
    except IntegrityError:
        held = active_release(row.service)
        where = f"{held.id} ({held.state})" if held else "another release"
        raise Conflict(
            f"{row.service} already has a release in progress: {where}",
            hint=f"wait for it, or `mlctl release status|resume|abort {row.service}`",
        ) from None


def claim(service: str) -> ReleaseRow:
    """Make this process the holder of the service's active release (resume/promote/abort)."""
    with session_scope() as s:
        lock = s.get(ServiceLockRow, service)
        if lock is None:
            raise NotFound(
                f"{service} has no release in progress",
                hint=f"start one with `mlctl release MODEL:VERSION --service {service}`",
            )
        if holder_alive(lock.holder):
            raise Conflict(
                f"release {lock.release_id} of {service} is being driven by {lock.holder}",
                hint="wait for that mlctl process, or stop it first",
            )
        lock.holder = holder()
        return load(s, lock.release_id)


def request(service: str, what: str) -> ReleaseRow:
    """Record a person's decision (promote | abort) on the active release, audited."""
    with session_scope() as s:
        lock = s.get(ServiceLockRow, service)
        if lock is None:
            raise NotFound(f"{service} has no release in progress", hint="nothing to promote or abort")
        row = load(s, lock.release_id)
        row.requested = what
        row.updated_at = now()
        record.audit(s, f"release.{what}", service, row.id, details={"state": row.state, "paused": row.paused})
        return row


def release_lock(s: Session, release_id: str) -> None:
    s.execute(delete(ServiceLockRow).where(ServiceLockRow.release_id == release_id))


def add_transition(s: Session, release_id: str, from_state: str, to_state: str, phase: str, at: str,
                   detail: dict[str, Any]) -> None:
    s.add(
        TransitionRow(
            release_id=release_id,
            from_state=from_state,
            to_state=to_state,
            phase=phase,
            at=at,
            detail=json.dumps(detail, default=str),
        )
    )


# -- what is live -------------------------------------------------------------------------------
def set_live(s: Session, row: ReleaseRow) -> None:
    """``row``'s colour and version now serve production; the one before becomes ``previous``."""
    cur = s.get(LiveServiceRow, row.service)
    at = now()
    if cur is None:
        s.add(
            LiveServiceRow(
                service=row.service,
                environment=row.environment,
                live_colour=row.colour,
                live_version=row.model_version,
                live_release_id=row.id,
                updated_at=at,
            )
        )
        return
    if cur.live_release_id == row.id:
        return
    cur.previous_colour, cur.previous_version, cur.previous_release_id = (
        cur.live_colour,
        cur.live_version,
        cur.live_release_id,
    )
    cur.live_colour, cur.live_version, cur.live_release_id = row.colour, row.model_version, row.id
    cur.environment, cur.updated_at = row.environment, at


def restore_live(s: Session, row: ReleaseRow) -> None:
    """Undo :func:`set_live` for ``row`` (a rollback): ``previous`` serves production again."""
    cur = s.get(LiveServiceRow, row.service)
    if cur is None or cur.live_release_id != row.id or cur.previous_colour is None:
        return
    cur.live_colour, cur.live_version = cur.previous_colour, cur.previous_version or ""
    cur.live_release_id = cur.previous_release_id or ""
    cur.previous_colour = cur.previous_version = cur.previous_release_id = None
    cur.updated_at = now()


def drop_live(service: str) -> None:
    """Nothing serves ``service`` any more (a first release rolled back)."""
    with session_scope() as s:
        s.execute(delete(LiveServiceRow).where(LiveServiceRow.service == service))
