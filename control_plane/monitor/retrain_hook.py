"""Wiring the retrain triggers to registrations (``model.registered``) without importing them.

The triggers (:mod:`control_plane.monitor.retrain`) read the registry, which loads SQLAlchemy's ORM
and numpy (~1 s). Every composition root subscribes them at start (the service layer, the CLI, a
pipeline's register step), most of which never register a model (``mlctl audit --help``), so the
subscribed handler is this thin one and the triggers are imported on the first registration.
"""

from __future__ import annotations

from typing import Any

from control_plane import events


def on_model_registered(event: dict[str, Any]) -> None:
    from control_plane.monitor import retrain  # lazy: the registry and numpy, needed by registrations only

    retrain.on_model_registered(event)


def subscribe() -> None:
    """Wire the retrain triggers to registrations in this process (idempotent: one handler, once)."""
    events.subscribe("model.registered", on_model_registered)
