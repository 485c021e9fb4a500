"""Which blueprint ``mlctl infra --blueprint`` names: a file here, or (with ``MLCTL_SERVER``) a
blueprint the server has, by name: the server never runs a blueprint file a caller sends."""

from __future__ import annotations

from pathlib import Path

from control_plane import environments
from control_plane.errors import UsageError
from control_plane.services import infra as service
from control_plane.settings import DEFAULT_BLUEPRINT

__all__ = ["local_blueprint", "served_blueprint"]


def local_blueprint(blueprint: Path | None) -> Path:
    """The file ``--blueprint`` names here: the path given, ``blueprints/NAME.yaml`` for a bare name
    that is no file, or the default blueprint."""
    if blueprint is None:
        return DEFAULT_BLUEPRINT
    if not blueprint.exists() and service.SERVED_BLUEPRINT.fullmatch(str(blueprint)):
        return environments.blueprint_path(str(blueprint))
    return blueprint


def served_blueprint(blueprint: Path | None) -> str | None:
    """What ``--blueprint`` names on the server: a name (None: the server's default). A path is a
    file on this machine, and the server never runs a caller's blueprint: refused with the fix."""
    if blueprint is None or service.SERVED_BLUEPRINT.fullmatch(str(blueprint)):
        return None if blueprint is None else str(blueprint)
    raise UsageError(f"--blueprint {blueprint}: with MLCTL_SERVER, infra runs a blueprint the server has, "
                     "never a file on this machine",
                     hint=f"{service.SERVED_BLUEPRINT_HINT}; or unset MLCTL_SERVER to run it from here")
