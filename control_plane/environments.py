"""Which blueprint environment a command acts on: ``--env NAME`` is ``blueprints/NAME.yaml`` (or
a path to a blueprint file, or NAME of one environment inside a multi-cloud blueprint in
``blueprints/``). The environment's declared ``tier`` decides approvals and identity rules."""

from __future__ import annotations

from pathlib import Path

from blueprints.schema import Environment
from control_plane.errors import NotFound
from control_plane.settings import BLUEPRINTS_DIR

__all__ = ["known_environments", "resolve"]


def known_environments() -> list[str]:
    return sorted(p.stem for p in BLUEPRINTS_DIR.glob("*.yaml"))


def resolve(env_name: str) -> Environment:
    """The environment ``env_name`` names; NotFound (naming the choices) when there is none."""
    from blueprints import load_blueprint, load_environment

    path = Path(env_name)
    if not path.suffix:
        path = BLUEPRINTS_DIR / f"{env_name}.yaml"
    if path.exists():
        return load_environment(path)
    if not Path(env_name).suffix:
        for candidate in sorted(BLUEPRINTS_DIR.glob("*.yaml")):
            bp = load_blueprint(candidate)
            for env in bp.environments:
                if env.name == env_name and len(bp.environments) > 1:
                    return env
    raise NotFound(
        f"environment {env_name!r} has no blueprint ({path})",
        hint=f"use one of {', '.join(known_environments())} or a blueprint file path",
    )
