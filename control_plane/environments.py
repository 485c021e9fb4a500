"""Which blueprint environment a command acts on, and the one loader that reads blueprints for the
control plane.

``--env NAME`` is ``blueprints/NAME.yaml`` (or a path to a blueprint file, or NAME of one
environment inside a multi-cloud blueprint in ``blueprints/``). The environment's declared ``tier``
decides approvals and identity rules. ``default_environment()`` is the one named by ``--blueprint`` /
``MLCTL_BLUEPRINT`` (``Settings.default_blueprint``), else ``blueprints/uae-local.yaml``.

Blueprints are parsed and validated once per process: a release asks for its environment from the
gates, the driver, the approvals and the audit signer, and each used to parse the YAML again. The
cache is keyed on the file's resolved path and the SHA-256 of its bytes, so an edited file is read
again (an mtime alone can miss an edit made within the filesystem's timestamp granularity, and
reading a few kilobytes costs microseconds; parsing and validating them costs milliseconds). The
models are frozen, so every caller may share one instance.
"""

from __future__ import annotations

import hashlib
import re
import threading
from pathlib import Path

from blueprints import loader
from blueprints.schema import Blueprint, Environment
from control_plane.errors import NotFound, UsageError
from control_plane.settings import BLUEPRINTS_DIR
from control_plane.settings import current as settings

__all__ = [
    "BLUEPRINT_NAME", "SERVED_NAME_HINT", "blueprint", "blueprint_path", "cache_clear", "default_environment",
    "known_environments", "load", "named_blueprint", "named_file", "resolve", "served_environment", "served_name",
]

_cache: dict[Path, tuple[str, Blueprint]] = {}
_lock = threading.Lock()


def blueprint(path: str | Path) -> Blueprint:
    """``blueprints.load_blueprint(path)``, cached per process on (resolved path, content digest).
    Errors are the loader's own (file, field and fix); a file that fails to load is not cached."""
    given = Path(path)
    try:
        resolved = given.resolve()
        digest = hashlib.sha256(resolved.read_bytes()).hexdigest()
    except OSError:
        return loader.load_blueprint(given)  # the loader names the file and the fix
    with _lock:
        hit = _cache.get(resolved)
    if hit is not None and hit[0] == digest:
        return hit[1]
    bp = loader.load_blueprint(given)
    with _lock:
        _cache[resolved] = (digest, bp)
    return bp


def cache_clear() -> None:
    """Forget every parsed blueprint (tests that count loads start from here)."""
    with _lock:
        _cache.clear()


def load(path: str | Path, name: str | None = None) -> Environment:
    """``blueprints.load_environment(path, name)`` through the cache (same errors)."""
    return loader.pick_environment(blueprint(path), path, name)


def default_environment() -> Environment:
    """The environment named by ``--blueprint`` / ``MLCTL_BLUEPRINT``, else ``blueprints/uae-local.yaml``."""
    return load(settings().default_blueprint)


def known_environments() -> list[str]:
    names = {p.stem for p in BLUEPRINTS_DIR.glob("*.yaml")}
    configured = settings().default_blueprint
    if configured.is_file():
        names.add(configured.stem)
    return sorted(names)


def named_file(name: str) -> Path | None:
    """The blueprint file a bare ``name`` stands for: ``blueprints/NAME.yaml``, else the configured
    ``MLCTL_BLUEPRINT`` (``--blueprint``) when NAME is its file's stem: the blueprint its operator
    chose is one the server has, by name, as ``infra`` already treats it."""
    path = BLUEPRINTS_DIR / f"{name}.yaml"
    if path.is_file():
        return path
    configured = settings().default_blueprint
    return configured if configured.stem == name and configured.is_file() else None


def _file_of(name: str) -> Path:
    """The file ``name`` stands for: a path as given, else ``named_file`` (when there is none, where
    ``blueprints/NAME.yaml`` would be, for the error message)."""
    path = Path(name)
    return (named_file(name) or BLUEPRINTS_DIR / f"{name}.yaml") if not path.suffix else path


def blueprint_path(env_name: str) -> Path:
    """The blueprint file of ``env_name`` (``blueprints/NAME.yaml``, or a path); NotFound otherwise."""
    path = _file_of(env_name)
    if not path.is_file():
        raise NotFound(f"environment {env_name!r} has no blueprint ({path})",
                       hint=f"use one of {', '.join(known_environments())} or a blueprint file path")
    return path


# A blueprint or environment a caller names to the server: letters, digits, '-' and '_', no dot
# and no slash, so that blueprint_path and resolve never read it as a path (the server never opens
# a file a caller chose: a blueprint decides which KMS key signs, which cluster is deployed to and
# which tier's approval rules apply, all with the server's own credentials).
BLUEPRINT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")
SERVED_NAME_HINT = "name one of the server's environments, e.g. uae-local (the server has its blueprints by name)"


def served_name(name: str, *, what: str = "env", hint: str = SERVED_NAME_HINT) -> str:
    """``name`` if it is a bare name (BLUEPRINT_NAME); UsageError naming ``what`` otherwise (a path,
    a dotted file name, a slash, an empty string). The one rule for every name a request carries."""
    if not BLUEPRINT_NAME.fullmatch(name):
        raise UsageError(f"{what} {name!r}: the server takes a blueprint name, not a path (it runs only the "
                         "blueprints its operator installed, by name)", hint=hint)
    return name


def served_environment(name: str, *, what: str = "env") -> str:
    """``served_name``, then the environment must exist among the server's blueprints (NotFound,
    naming them, otherwise). Names of environments inside a multi-cloud blueprint are valid."""
    served_name(name, what=what)
    try:
        resolve(name)
    except NotFound:
        raise NotFound(f"{what} {name!r}: the server has no environment of that name",
                       hint=f"use one of {', '.join(known_environments())} (or an environment of a "
                       "multi-cloud blueprint among them)") from None
    return name


def named_blueprint(name: str, *, what: str = "blueprint", hint: str) -> Path:
    """The server's blueprint ``name`` (``blueprints/NAME.yaml``); UsageError for anything that is
    not a bare name, NotFound for a name the server has no blueprint of."""
    served_name(name, what=what, hint=hint)
    return blueprint_path(name)


def resolve(env_name: str) -> Environment:
    """The environment ``env_name`` names; NotFound (naming the choices) when there is none."""
    path = _file_of(env_name)
    if path.exists():
        return load(path)
    if not Path(env_name).suffix:
        configured = settings().default_blueprint
        candidates = sorted(BLUEPRINTS_DIR.glob("*.yaml"))
        if configured.is_file() and configured.parent.resolve() != BLUEPRINTS_DIR.resolve():
            candidates.append(configured)
        for candidate in candidates:
            bp = blueprint(candidate)
            for env in bp.environments:
                if env.name == env_name and len(bp.environments) > 1:
                    return env
    raise NotFound(
        f"environment {env_name!r} has no blueprint ({path})",
        hint=f"use one of {', '.join(known_environments())} or a blueprint file path",
    )
