"""Where mlctl keeps its state and how it finds the repository's assets.

Everything mlctl writes (database, dev signing key, pid files, terraform work dirs) lives under
``$MLCTL_HOME``; without it, under the user's data directory. Nothing is written elsewhere.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import platformdirs

PACKAGE_ROOT = Path(__file__).resolve().parent
# The repository (or the installed site-packages dir) holding blueprints/, policies/, stacks/.
PROJECT_ROOT = PACKAGE_ROOT.parent
BLUEPRINTS_DIR = PROJECT_ROOT / "blueprints"
POLICIES_DIR = PROJECT_ROOT / "policies"
DEFAULT_BLUEPRINT = BLUEPRINTS_DIR / "uae-local.yaml"


# Files mlctl writes are the owner's only: the database (registry, approvals, audit), logs, keys,
# exports and served model copies. ``private_files()`` sets the process umask so that every file
# (and every child process's file: model servers, the gateway) is created 0600 / 0700.
PRIVATE_UMASK = 0o077
_warned: set[Path] = set()


def private_files() -> None:
    """New files and directories of this process and its children: 0600 / 0700."""
    os.umask(PRIVATE_UMASK)


def mlctl_home() -> Path:
    """The state directory, created private (0700) on first use; a warning if others can read it."""
    raw = os.environ.get("MLCTL_HOME")
    home = Path(raw).expanduser() if raw else Path(platformdirs.user_data_dir("mlctl", appauthor=False))
    if not home.exists():
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        home.chmod(0o700)  # mkdir's mode is filtered by the umask; be explicit
    elif home not in _warned and home.stat().st_mode & 0o077:
        _warned.add(home)
        import sys

        sys.stderr.write(
            f"warning: $MLCTL_HOME {home} is readable by other users (mode {home.stat().st_mode & 0o777:o}); "
            f"it holds the registry, approvals, audit trail and keys: chmod 700 {home}\n"
        )
    return home


def state_dir(*parts: str) -> Path:
    """A sub-directory of ``$MLCTL_HOME`` (created on demand)."""
    path = mlctl_home().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def local_ca_dir() -> Path:
    """The local certificate authority (``control_plane.local.ca``): ``ca.pem`` is the root that
    clients of the gateway (and the API server) trust; ``ca.key`` never leaves it (0600)."""
    return state_dir("ca")


def local_ca_cert() -> Path:
    """The local CA's root certificate (what a client passes as its trust anchor)."""
    return local_ca_dir() / "ca.pem"


def actor() -> str | None:
    """The asserted identity: ``--as`` (a process override), else ``MLCTL_ACTOR``."""
    return current().actor


def verifier_image() -> str | None:
    """``MLCTL_VERIFIER_IMAGE``: the in-pod model verifier, REPOSITORY@sha256:<digest> (docs/kubernetes.md);
    by default the mlctl tools image (``MLCTL_TOOLS_IMAGE``, docs/optimize.md), which holds the same
    package. Unset: no InferenceService is rendered, since nothing would verify the model it serves."""
    return os.environ.get("MLCTL_VERIFIER_IMAGE") or os.environ.get("MLCTL_TOOLS_IMAGE") or None


def trusted_keys_configmap() -> str:
    """``MLCTL_TRUSTED_KEYS_CONFIGMAP``: the ConfigMap of PEM public keys the in-pod verifier trusts."""
    return os.environ.get("MLCTL_TRUSTED_KEYS_CONFIGMAP") or "mlctl-trusted-model-keys"


# --- the audit log (control_plane.audit reads these here and nowhere else) ---

AUDIT_ANCHOR_MODES = ("auto", "s3", "off")


def _int_setting(name: str, default: int, minimum: int) -> int:
    from control_plane.errors import MlctlError

    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise MlctlError(f"{name}={raw!r} is not a whole number >= {minimum}", hint=f"unset it to use {default}")
    return value


def audit_signer_kind() -> str:
    """Who signs tree heads: ``local`` (development key), ``kms`` (the environment's KMS key), ``pkcs11``."""
    return os.environ.get("MLCTL_AUDIT_SIGNER", "local")


def audit_blueprint() -> Path:
    """The environment whose KMS key signs heads and whose audit bucket anchors them."""
    raw = os.environ.get("MLCTL_AUDIT_BLUEPRINT") or os.environ.get("MLCTL_BLUEPRINT")
    return Path(raw) if raw else DEFAULT_BLUEPRINT


def audit_anchor_mode() -> str:
    """``auto``: anchor heads in the audit bucket when the environment is reachable (real cloud, or a
    running emulator), keep them pending otherwise; ``s3``: anchoring is required (a failure is an
    error); ``off``: local copies only (verification says so)."""
    from control_plane.errors import MlctlError

    mode = os.environ.get("MLCTL_AUDIT_ANCHOR", "auto")
    if mode not in AUDIT_ANCHOR_MODES:
        raise MlctlError(f"MLCTL_AUDIT_ANCHOR={mode!r} is not one of {', '.join(AUDIT_ANCHOR_MODES)}",
                         hint="unset it for 'auto'")
    return mode


def audit_head_every() -> int:
    """Issue a signed tree head after this many unsigned entries..."""
    return _int_setting("MLCTL_AUDIT_HEAD_EVERY", 1000, 1)


def audit_head_seconds() -> int:
    """...or once the newest head is this many seconds old (0: at every append)."""
    return _int_setting("MLCTL_AUDIT_HEAD_SECONDS", 60, 0)


def audit_trusted_keys() -> list[Path]:
    """PEM public keys (the operator's keyring, ``os.pathsep``-separated) that heads must verify with.
    Empty: the configured signer's own public key (the dev key file, or KMS GetPublicKey)."""
    raw = os.environ.get("MLCTL_AUDIT_TRUSTED_KEYS", "")
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()]


def audit_log_id() -> str | None:
    """Names this log in signed heads and in the bucket; default: derived from the database URL."""
    return os.environ.get("MLCTL_AUDIT_LOG_ID") or None


# --- the settings object -------------------------------------------------------------------------
#
# Flags, then environment variables, then files: a front end (the CLI's root callback, the API
# server at start-up) calls ``configure(**flags)`` once; everything below reads ``current()``.
# ``current()`` is rebuilt only when an ``MLCTL_*`` variable changes (tests set them per test with
# monkeypatch; a process sets them once), so callers may call it freely. No layer writes
# ``os.environ`` to pass a flag on: flags live in ``_overrides``.


@dataclass(frozen=True)
class Settings:
    """Every ``MLCTL_*`` setting, resolved. Add a field here (and its variable in ``_from_environ``)
    rather than reading ``os.environ`` anywhere else."""

    actor: str | None = None  # --as / MLCTL_ACTOR: an asserted identity (dev tier only)
    blueprint: Path | None = None  # --blueprint / MLCTL_BLUEPRINT: the default environment's file

    @property
    def default_blueprint(self) -> Path:
        return self.blueprint or DEFAULT_BLUEPRINT


_overrides: dict[str, Any] = {}
_cache: tuple[tuple[tuple[str, str], ...], tuple[tuple[str, Any], ...], Settings] | None = None
_cache_lock = threading.Lock()


def _from_environ(env: Mapping[str, str]) -> dict[str, Any]:
    blueprint = env.get("MLCTL_BLUEPRINT")
    return {
        "actor": env.get("MLCTL_ACTOR") or None,
        "blueprint": Path(blueprint).expanduser() if blueprint else None,
    }


def current() -> Settings:
    """The process's settings: flags given to ``configure``, over ``MLCTL_*`` variables, over defaults."""
    global _cache
    snapshot = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("MLCTL_")))
    flags = tuple(sorted(_overrides.items()))
    with _cache_lock:
        if _cache is not None and _cache[0] == snapshot and _cache[1] == flags:
            return _cache[2]
        values = _from_environ(os.environ)
        values.update({k: v for k, v in _overrides.items() if v is not None})
        built = Settings(**values)
        _cache = (snapshot, flags, built)
        return built


def configure(**flags: Any) -> Settings:
    """A front end's flags (``None``: not given). Unknown names are a programming error."""
    unknown = set(flags) - {f.name for f in fields(Settings)}
    if unknown:
        raise TypeError(f"not a setting: {', '.join(sorted(unknown))}")
    _overrides.update(flags)
    return current()


@contextmanager
def overridden(**flags: Any) -> Iterator[Settings]:
    """``configure`` for a block (demos and tests), restoring the previous flags after it."""
    saved = dict(_overrides)
    try:
        yield configure(**flags)
    finally:
        _overrides.clear()
        _overrides.update(saved)
