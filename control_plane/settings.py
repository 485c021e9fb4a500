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


def mlctl_home() -> Path:
    """The state directory, created private (0700) on first use."""
    raw = os.environ.get("MLCTL_HOME")
    home = Path(raw).expanduser() if raw else Path(platformdirs.user_data_dir("mlctl", appauthor=False))
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
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
    """The acting identity: ``--as`` sets MLCTL_ACTOR for the process; OIDC claims come later."""
    return os.environ.get("MLCTL_ACTOR") or None
