"""Where mlctl keeps its state and how it finds the repository's assets.

Everything mlctl writes (database, dev signing key, pid files, terraform work dirs) lives under
``$MLCTL_HOME``; without it, under the user's data directory. Nothing is written elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

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


def actor() -> str | None:
    """The acting identity: ``--as`` sets MLCTL_ACTOR for the process; OIDC claims come later."""
    return os.environ.get("MLCTL_ACTOR") or None
