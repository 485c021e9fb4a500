"""What the KServe rendering needs to know: the model version to serve and how to serve it.

Kept free of the registry and release packages on purpose: the release engine builds a
``ServedModel`` from its records, the TensorRT optimizer can build one for a plan, and both render
the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from control_plane import settings
from control_plane.errors import MlctlError
from control_plane.kserve import naming


class ModelFormat(StrEnum):
    onnx = "onnx"
    tensorrt = "tensorrt"  # a TensorRT plan built for the GPU pool's compute capability


class DeploymentMode(StrEnum):
    """KServe's deployment modes, under their names since KServe 0.15.

    ``Knative`` was ``Serverless`` and ``Standard`` was ``RawDeployment``; KServe still accepts the old
    names, and so does :func:`parse_mode`, but we always write the new ones.
    """

    knative = "Knative"
    standard = "Standard"


_LEGACY_MODES = {"serverless": DeploymentMode.knative, "rawdeployment": DeploymentMode.standard}


def parse_mode(raw: str | DeploymentMode) -> DeploymentMode:
    if isinstance(raw, DeploymentMode):
        return raw
    for mode in DeploymentMode:
        if raw.lower() == mode.value.lower():
            return mode
    legacy = _LEGACY_MODES.get(raw.lower())
    if legacy is not None:
        return legacy
    raise MlctlError(
        f"unknown KServe deployment mode {raw!r}",
        hint="use Standard (plain Deployments, traffic through a Gateway API HTTPRoute) or Knative "
        "(Serverless: canaryTrafficPercent); RawDeployment and Serverless are the old names",
    )


class Colour(StrEnum):
    blue = "blue"
    green = "green"

    @property
    def other(self) -> Colour:
        return Colour.green if self is Colour.blue else Colour.blue


@dataclass(frozen=True, kw_only=True)
class ServedModel:
    """One registered, signed model version as a server will load it."""

    name: str
    version: str
    digest: str  # sha256:<hex> over the signed model directory (the registry's digest)
    release_id: str
    format: ModelFormat
    storage_uri: str  # the directory Triton loads (a model repository), in the environment's registry

    def __post_init__(self) -> None:
        if not self.name or not self.version:
            raise MlctlError(
                "a served model needs a name and a version",
                hint="release a registered model as NAME:VERSION (see `mlctl model show`)",
            )
        if not self.release_id:
            raise MlctlError(
                "a served model needs the release id that deploys it", hint="start it with mlctl release"
            )
        naming.check_digest(self.digest)
        object.__setattr__(self, "format", ModelFormat(self.format))


@dataclass(frozen=True, kw_only=True)
class ServingOptions:
    """How a service runs on the cluster. Defaults are the secure, GPU-backed production shape.

    The blueprint (``blueprints.schema.Environment``) does not describe these yet; callers pass them
    explicitly (the CLI exposes them as options) so nothing here is guessed from the cluster.
    """

    namespace: str = "mlops-serving"
    mode: DeploymentMode = DeploymentMode.standard
    gpu_pool: str | None = None  # name of a pool in env.cluster.gpu_pools; default: the first one
    gpus: int = 1
    cpu: str = "2"
    memory: str = "8Gi"
    min_replicas: int = 1  # never 0: a GPU model server cold start is tens of seconds
    max_replicas: int = 2
    # The Kubernetes service account bound to the model-server IAM role (IRSA) that may read the
    # model bucket and decrypt with the artifacts key; created by the cluster stack.
    service_account: str = "mlops-model-server"
    runtime: str = "kserve-tritonserver"
    read_only_root_fs: bool = True
    # Gateway API parent of the HTTPRoute in Standard mode (KServe's default ingress gateway).
    gateway_name: str = "kserve-ingress-gateway"
    gateway_namespace: str = "kserve"
    hostnames: tuple[str, ...] = ()
    # The in-pod verifier (control_plane.kserve.verification): its image, pinned by digest, and the
    # ConfigMap of public keys it trusts. Read from MLCTL_VERIFIER_IMAGE / MLCTL_TRUSTED_KEYS_CONFIGMAP.
    verifier_image: str | None = field(default_factory=settings.verifier_image)
    trusted_keys_configmap: str = field(default_factory=settings.trusted_keys_configmap)

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", parse_mode(self.mode))
        naming.check_namespace(self.namespace)
        if not 0 <= self.gpus <= 16:
            raise MlctlError(f"gpus={self.gpus} is out of range", hint="ask for 0 to 16 GPUs per replica")
        if not 1 <= self.min_replicas <= self.max_replicas:
            raise MlctlError(
                f"replicas min={self.min_replicas} max={self.max_replicas} are not 1 <= min <= max",
                hint="keep at least one replica warm (min_replicas >= 1) and max_replicas >= min_replicas",
            )
