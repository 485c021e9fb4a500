"""The demo's people: asserted identities of a dev-tier environment (uae-local), as a front end builds them."""

from __future__ import annotations

from typing import Any

from control_plane import identity, settings
from control_plane.services import Context

__all__ = ["as_actor"]


def as_actor(actor: str) -> Any:
    """A service-layer Context for one of the demo's asserted identities (uae-local is a dev tier,
    where ``--as`` is accepted): what ``mlctl --as ACTOR ...`` builds."""
    with settings.overridden(actor=actor):
        return Context.for_actor(identity.current())
