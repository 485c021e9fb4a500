"""Role assignments: a YAML file mapping actor ids to roles.

Default ``$MLCTL_HOME/roles.yaml``; ``MLCTL_ROLES_FILE`` points elsewhere. Shape::

    actors:
      alice: [data-scientist]
      bob: [approver, ml-engineer]

Unknown roles are refused at load time (a typo must not silently grant nothing or everything).

Who holds which role is part of who someone is (``identity.current()`` resolves an asserted
actor's roles here), so this lives with identity, below ``access`` (which role may do what:
``policies/rbac.rego``). ``control_plane.access.roles`` re-exports it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from control_plane.errors import MlctlError, PolicyViolation, UsageError
from control_plane.settings import PROJECT_ROOT, mlctl_home
from control_plane.settings import current as settings

ROLES = (
    "data-scientist",
    "ml-engineer",
    "approver",
    "security-officer",
    "platform-admin",
    "auditor",
)
EXAMPLE = PROJECT_ROOT / "policies" / "roles.example.yaml"


def roles_file() -> Path:
    return settings().roles_file or mlctl_home() / "roles.yaml"


def create_hint(path: Path | None = None) -> str:
    path = path or roles_file()
    return (
        f"create {path} assigning roles to actors (copy {EXAMPLE}), "
        "or point MLCTL_ROLES_FILE at your roles file"
    )


def load_assignments(path: Path | None = None) -> dict[str, list[str]] | None:
    """actor -> roles, or None when the file does not exist (the caller decides: deny)."""
    path = path or roles_file()
    if not path.exists():
        return None
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        # A file that exists but does not parse is a usage error at a line, not a missing file.
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "somewhere"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UsageError(f"{path}: not valid YAML at {where}: {problem}",
                         hint=f"fix {path} at {where}; the shape is in policies/roles.example.yaml") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the roles file ({exc})",
                         hint=f"check the file's permissions and encoding (UTF-8): {path}") from None
    if data is None:
        data = {"actors": {}}
    if not isinstance(data, dict) or not isinstance(data.get("actors", {}), dict):
        raise PolicyViolation(
            f"{path}: expected a mapping 'actors: {{actor-id: [role, ...]}}'", hint=create_hint(path)
        )
    unknown_keys = set(data) - {"actors"}
    if unknown_keys:
        raise PolicyViolation(
            f"{path}: unknown top-level key(s) {', '.join(sorted(map(str, unknown_keys)))}",
            hint="the file has one key, 'actors'; see policies/roles.example.yaml",
        )
    out: dict[str, list[str]] = {}
    for actor, roles in (data.get("actors") or {}).items():
        if isinstance(roles, str):
            roles = [roles]
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise PolicyViolation(
                f"{path}: actors.{actor}: expected a list of roles", hint=f"use e.g. [{ROLES[0]}]"
            )
        bad = [r for r in roles if r not in ROLES]
        if bad:
            raise PolicyViolation(
                f"{path}: actors.{actor}: unknown role(s) {', '.join(bad)}",
                hint=f"use only {', '.join(ROLES)}",
            )
        out[str(actor)] = sorted(set(roles))
    return out


def roles_of(actor: str, path: Path | None = None) -> list[str]:
    """The actor's roles; [] when unassigned or when there is no roles file."""
    try:
        assignments = load_assignments(path)
    except MlctlError:
        return []
    if not assignments:
        return []
    return list(assignments.get(actor, []))


def write_assignments(assignments: dict[str, list[str]], path: Path | None = None) -> Path:
    """Write a roles file (used by the local demo and tests)."""
    path = path or roles_file()
    for actor, roles in assignments.items():
        bad = [r for r in roles if r not in ROLES]
        if bad:
            raise PolicyViolation(f"actor {actor}: unknown role(s) {', '.join(bad)}", hint=f"use {', '.join(ROLES)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"actors": {a: sorted(r) for a, r in assignments.items()}}, sort_keys=True))
    return path
