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


def actor() -> str | None:
    """The acting identity: ``--as`` sets MLCTL_ACTOR for the process; OIDC claims come later."""
    return os.environ.get("MLCTL_ACTOR") or None


def verifier_image() -> str | None:
    """``MLCTL_VERIFIER_IMAGE``: the in-pod model verifier, REPOSITORY@sha256:<digest> (docs/kubernetes.md);
    by default the mlctl tools image (``MLCTL_TOOLS_IMAGE``, docs/optimize.md), which holds the same
    package. Unset: no InferenceService is rendered, since nothing would verify the model it serves."""
    return os.environ.get("MLCTL_VERIFIER_IMAGE") or os.environ.get("MLCTL_TOOLS_IMAGE") or None


def trusted_keys_configmap() -> str:
    """``MLCTL_TRUSTED_KEYS_CONFIGMAP``: the ConfigMap of PEM public keys the in-pod verifier trusts."""
    return os.environ.get("MLCTL_TRUSTED_KEYS_CONFIGMAP") or "mlctl-trusted-model-keys"
