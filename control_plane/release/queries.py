"""Read-only views over recorded releases: list (filtered) and a service's history."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from control_plane.errors import UsageError
from control_plane.query import since_cutoff
from control_plane.release import states
from control_plane.release.models import ReleaseRow
from control_plane.store import session_scope

STATES = (
    states.PENDING, states.VERIFIED, states.APPROVED, states.GREEN_APPLIED, states.GREEN_READY,
    states.SMOKE_PASSED, states.PRE_ANALYSIS_PASSED, states.CANARY_STEP, states.SWITCHED,
    states.POST_ANALYSIS_PASSED, states.DONE, states.ROLLING_BACK, states.ROLLED_BACK, states.REFUSED,
)
# Shorthands an operator types: "active" is anything not terminal, "paused" waits for a person.
STATE_GROUPS = {"active": "not DONE, ROLLED_BACK or REFUSED", "paused": "waiting for promote or abort"}


def summary(row: ReleaseRow) -> dict[str, Any]:
    """One release as a list row (the JSON schema of ``release list`` and ``release history``)."""
    return {
        "release": row.id,
        "service": row.service,
        "model": f"{row.model_name}:{row.model_version}",
        "environment": row.environment,
        "strategy": row.strategy,
        "state": row.state,
        "paused": row.paused,
        "colour": row.colour,
        "previous_version": row.previous_version,
        "reasons": json.loads(row.reasons or "[]"),
        "created_by": row.created_by,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def list_releases(
    *, service: str | None = None, states: list[str] | None = None, model: str | None = None,
    actor: str | None = None, since: str | None = None,
) -> list[dict[str, Any]]:
    """Releases, newest first, filtered (every filter optional)."""
    wanted = [s.upper().replace("-", "_") for s in states or []]
    for w in wanted:
        if w not in STATES and w.lower() not in STATE_GROUPS:
            raise UsageError(f"--state {w!r} is not a release state",
                             hint=f"use one of {', '.join(STATES)} or {', '.join(STATE_GROUPS)}")
    q = select(ReleaseRow).order_by(ReleaseRow.created_at.desc(), ReleaseRow.id.desc())
    if service:
        q = q.where(ReleaseRow.service == service)
    if model:
        name, _, version = model.partition(":")
        q = q.where(ReleaseRow.model_name == name)
        if version:
            q = q.where(ReleaseRow.model_version == version)
    if actor:
        q = q.where(ReleaseRow.created_by == actor)
    cutoff = since_cutoff(since)
    if cutoff:
        q = q.where(ReleaseRow.created_at >= cutoff)
    with session_scope() as session:
        rows = list(session.scalars(q))
    out = []
    for row in rows:
        if wanted and not any(_matches(row, w) for w in wanted):
            continue
        out.append(summary(row))
    return out


def _matches(row: ReleaseRow, wanted: str) -> bool:
    if wanted == "ACTIVE":
        return row.state not in states.TERMINAL
    if wanted == "PAUSED":
        return bool(row.paused) and row.state not in states.TERMINAL
    return row.state == wanted
