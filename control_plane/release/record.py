"""What a release tells others: audit entries (written in the caller's transaction, so a state and
its audit entry commit together) and events (emitted after the commit, never failing a release)."""

from __future__ import annotations

import contextlib
from typing import Any

from sqlalchemy.orm import Session

from control_plane import audit as audit_trail
from control_plane import events
from control_plane.errors import MlctlError


def audit(
    s: Session,
    action: str,
    service: str,
    release_id: str,
    *,
    decision: str = "allow",
    reasons: list[str] | None = None,
    digests: dict[str, str] | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """One audit entry about ``service``'s release, in the session ``s`` (same transaction)."""
    audit_trail.record(
        action=action,
        subject=f"service/{service}",
        decision=decision,
        reasons=reasons or [],
        digests=digests,
        details={"release": release_id, **(details or {})},
        session=s,
    )


def emit(event_type: str, service: str, data: dict[str, Any]) -> None:
    """Emit an event about ``service``.

    A sink outage must not leave a half-driven release: delivery problems are the events module's
    dead-letter business, not the state machine's."""
    with contextlib.suppress(MlctlError):
        events.emit(event_type, f"service/{service}", data)
