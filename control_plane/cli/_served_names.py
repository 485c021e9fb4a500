"""What ``--env`` / ``--blueprint`` name on the server (``MLCTL_SERVER``): an environment or a
blueprint the server has, by name. A path is a file on this machine, which the server never reads
(it refuses one with 422): refused here at once, exit 2, with the fix, instead of sending the file's
stem or its environment's name as if the server had that file."""

from __future__ import annotations

from pathlib import Path
from typing import overload

from control_plane.environments import BLUEPRINT_NAME
from control_plane.errors import UsageError
from control_plane.settings import DEFAULT_BLUEPRINT

__all__ = ["served_blueprint", "served_env"]


@overload
def served_env(env: str, *, flag: str = ...) -> str: ...


@overload
def served_env(env: None, *, flag: str = ...) -> None: ...


def served_env(env: str | None, *, flag: str = "--env") -> str | None:
    """``env`` when it is a bare name (or None); UsageError for a path, a file name or an empty one."""
    if env is None or BLUEPRINT_NAME.fullmatch(env):
        return env
    raise UsageError(f"{flag} {env}: through a server an environment is named, not a file (the server uses "
                     "only the blueprints its operator installed)",
                     hint=f"pass the name of one of the server's environments, e.g. {flag} uae-local; or unset "
                     "MLCTL_SERVER to use a blueprint file on this machine")


def served_blueprint(blueprint: Path | None, *, flag: str = "--blueprint") -> str | None:
    """The name ``--blueprint`` gives the server: None when not given (or the default left as it is:
    the server's own default), the bare name given, UsageError for a path."""
    if blueprint is None or blueprint == DEFAULT_BLUEPRINT:
        return None
    return served_env(str(blueprint), flag=flag)
