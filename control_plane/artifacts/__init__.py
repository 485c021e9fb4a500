"""Artifact stores: where registered model bytes live.

``get_store()`` picks one: ``local`` (the embedded default, ``$MLCTL_HOME/artifacts``) or ``s3``
(the blueprint's ``registries.model_bucket`` with SSE-KMS under ``alias/<env>-artifacts``).
``MLCTL_ARTIFACT_STORE`` sets the default kind; ``MLCTL_BLUEPRINT`` the environment for S3.
``store_for_uri`` finds the store that holds a recorded ``artifact_uri``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from control_plane.artifacts.base import ArtifactStore, sha256_file
from control_plane.artifacts.local import LocalArtifactStore
from control_plane.artifacts.s3 import S3ArtifactStore
from control_plane.environments import default_environment
from control_plane.errors import MlctlError
from control_plane.settings import current as settings

if TYPE_CHECKING:
    from blueprints.schema import Environment

STORE_KINDS = ("local", "s3")

__all__ = [
    "STORE_KINDS", "ArtifactStore", "LocalArtifactStore", "S3ArtifactStore", "get_store", "sha256_file",
    "store_for_uri",
]


def _environment() -> Environment:
    return default_environment()


def get_store(kind: str | None = None, env: Environment | None = None) -> ArtifactStore:
    kind = kind or settings().artifact_store
    if kind == "local":
        return LocalArtifactStore()
    if kind == "s3":
        return S3ArtifactStore(env or _environment())
    raise MlctlError(f"unknown artifact store '{kind}'", hint=f"use one of: {', '.join(STORE_KINDS)}")


def store_for_uri(uri: str, env: Environment | None = None) -> ArtifactStore:
    if uri.startswith("file://"):
        return LocalArtifactStore()
    if uri.startswith("s3://"):
        bucket = uri[len("s3://"):].split("/", 1)[0]
        return S3ArtifactStore(env or _environment(), bucket=bucket)
    raise MlctlError(f"unsupported artifact URI {uri}", hint="artifact URIs are file:// or s3://")

