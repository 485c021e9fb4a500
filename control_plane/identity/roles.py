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

import hashlib
import threading
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


# Parsed roles files, by path and the SHA-256 of their bytes: every acting-identity lookup reads
# the roles file (an audit append does, an authorization does), and parsing and validating the YAML
# cost ~0.6 ms a time against a few microseconds to read and hash it. The digest, not the mtime,
# decides: an edit within the filesystem's timestamp granularity must not be missed (the file
# grants roles). A file that fails to load is never cached, so its error is raised every time.
_parsed: dict[str, tuple[bytes, dict[str, list[str]]]] = {}
_parsed_lock = threading.Lock()


def load_assignments(path: Path | None = None) -> dict[str, list[str]] | None:
    """actor -> roles, or None when the file does not exist (the caller decides: deny)."""
    path = path or roles_file()
    try:
        raw = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise _unreadable(path, exc) from None
    digest = hashlib.sha256(raw).digest()
    key = str(path)
    with _parsed_lock:
        hit = _parsed.get(key)
    if hit is None or hit[0] != digest:
        hit = (digest, _parse(path, raw))
        with _parsed_lock:
            _parsed[key] = hit
    return {actor: list(roles) for actor, roles in hit[1].items()}  # callers may change their copy


def _unreadable(path: Path, exc: Exception) -> UsageError:
    return UsageError(f"{path}: cannot read the roles file ({exc})",
                      hint=f"check the file's permissions and encoding (UTF-8): {path}")


def _parse(path: Path, raw: bytes) -> dict[str, list[str]]:
    try:
        data: Any = yaml.safe_load(raw.decode("utf-8"))
    except yaml.YAMLError as exc:
        # A file that exists but does not parse is a usage error at a line, not a missing file.
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "somewhere"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UsageError(f"{path}: not valid YAML at {where}: {problem}",
                         hint=f"fix {path} at {where}; the shape is in policies/roles.example.yaml") from None
    except UnicodeDecodeError as exc:
        raise _unreadable(path, exc) from None
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
