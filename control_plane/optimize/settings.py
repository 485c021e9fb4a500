"""What an operator provides for engine builds: the TensorRT container (pinned by digest), the
tools image that fetches/verifies/uploads, the namespace and the IRSA role.

Read from ``$MLCTL_HOME/optimize.yaml`` (or ``MLCTL_OPTIMIZE_FILE``), with environment overrides
``MLCTL_TENSORRT_IMAGE``, ``MLCTL_TOOLS_IMAGE``, ``MLCTL_BUILD_NAMESPACE``, ``MLCTL_BUILD_ROLE_ARN``.
Images must be pinned by digest: a tag can be re-pointed, and then the engine we approved is no
longer built by the toolchain we recorded.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from control_plane.errors import MlctlError
from control_plane.settings import current, mlctl_home

_DIGEST = re.compile(r"^[a-z0-9.-]+(:\d+)?(/[a-z0-9._-]+)+(:[\w.-]+)?@sha256:[0-9a-f]{64}$")


class OptimizeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tensorrt_image: str = Field(description="NVIDIA TensorRT container, e.g. nvcr.io/nvidia/tensorrt:24.08-py3@sha256:...")
    tools_image: str = Field(description="our tools image (fetch + verify + upload), pinned by digest")
    namespace: str = "mlops-build"
    service_account: str = "tensorrt-builder"
    role_arn: str | None = Field(default=None, description="IAM role for IRSA (registry read/write)")
    timeout_seconds: int = Field(default=3600, ge=60)

    @field_validator("tensorrt_image", "tools_image")
    @classmethod
    def _pinned(cls, v: str) -> str:
        if not _DIGEST.match(v):
            raise ValueError(
                f"image '{v}' is not pinned by digest; use REGISTRY/REPO[:TAG]@sha256:<64 hex> "
                "(an in-region ECR mirror of NVIDIA's image)"
            )
        return v


def settings_path() -> Path:
    return current().optimize_file or mlctl_home() / "optimize.yaml"


def load_settings() -> OptimizeSettings:
    path = settings_path()
    data: dict[str, object] = {}
    if path.exists():
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, dict):
            raise MlctlError(f"{path}: expected a mapping", hint="see docs/optimize.md for the format")
        data.update(loaded)
    s = current()
    for key, value in (
        ("tensorrt_image", s.tensorrt_image),  # MLCTL_TENSORRT_IMAGE
        ("tools_image", s.tools_image),  # MLCTL_TOOLS_IMAGE
        ("namespace", s.build_namespace),  # MLCTL_BUILD_NAMESPACE
        ("role_arn", s.build_role_arn),  # MLCTL_BUILD_ROLE_ARN
    ):
        if value:
            data[key] = value
    try:
        return OptimizeSettings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {str(e['msg']).removeprefix('Value error, ')}" for e in exc.errors()
        )
        raise MlctlError(
            f"optimizer settings ({path}): {problems}",
            hint="set tensorrt_image and tools_image (pinned by @sha256 digest) in that file or via "
            "MLCTL_TENSORRT_IMAGE / MLCTL_TOOLS_IMAGE; see docs/optimize.md",
        ) from None
