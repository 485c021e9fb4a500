"""The verification step every rendered InferenceService carries: the model bytes are checked
against their signature inside the pod, after they are in place and before the model server starts.

**How KServe orders init containers, and what we rely on.** KServe's pod mutator
(``pkg/webhook/admission/pod/storage_initializer_injector.go``, ``CommonStorageInitialization``)
*appends* its ``storage-initializer`` after the init containers the predictor declares, so a
verifier declared as an ordinary init container would run *before* the download and check nothing.
The same function skips its injection entirely when the pod already has an init container named
``storage-initializer`` (also what makes the webhook idempotent on reinvocation). We rely on that:
the predictor declares its own ``storage-initializer``, our verifier
(``python -m control_plane.signing.verify_pod``), which downloads ``storageUri`` into the model
volume and verifies it; KServe then injects nothing, so nothing else writes the volume. A second
reason for that name: KServe's status propagation (``PropagateModelStatus``) reports a failed init
container *of that name* as ``modelStatus.lastFailureInfo`` (``ModelLoadFailed``, with the
container's termination message), which is how the release engine learns which file was refused.

Because KServe skips its injection, we also declare what it would have added: the
``kserve-provision-location`` emptyDir mounted at ``/mnt/models`` (read-only for the model server)
and the region for the S3 client; credentials come from the service account's IAM role (IRSA).
"""

from __future__ import annotations

import re
from typing import Any, Final

from blueprints.schema import Environment
from control_plane.errors import PolicyViolation
from control_plane.kserve.model import ServedModel, ServingOptions

CONTAINER_NAME: Final = "storage-initializer"  # KServe's constants.StorageInitializerContainerName
MODEL_VOLUME: Final = "kserve-provision-location"  # KServe's constants.StorageInitializerVolumeName
MODEL_MOUNT: Final = "/mnt/models"  # KServe's constants.DefaultModelLocalMountPath
KEYS_VOLUME: Final = "mlctl-trusted-keys"
KEYS_MOUNT: Final = "/etc/mlctl/trusted-keys"
TMP_VOLUME: Final = "verifier-tmp"
ENTRY_POINT: Final = ("python", "-m", "control_plane.signing.verify_pod")
IMAGE_SETTING: Final = "MLCTL_VERIFIER_IMAGE"
_PINNED_IMAGE = re.compile(r"^[a-z0-9][a-z0-9.:/_-]*@sha256:[0-9a-f]{64}$")
_ECR_HOST = re.compile(r"^\d{12}\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com/")


def check_image(image: str | None, env: Environment) -> str:
    """The verifier image, pinned by digest (a tag can be moved to other code) and, when it comes
    from ECR, from the environment's own region (UAE residency)."""
    if not image:
        raise PolicyViolation(
            "no model verifier image is configured, so no pod could verify the model it serves",
            hint=f"set {IMAGE_SETTING} (or MLCTL_TOOLS_IMAGE) to the mlctl tools image pinned by digest, "
            "e.g. <account>.dkr.ecr.me-central-1.amazonaws.com/mlctl-tools:0.1.0@sha256:<digest> "
            "(docs/kubernetes.md)",
        )
    if not _PINNED_IMAGE.match(image):
        raise PolicyViolation(
            f"model verifier image {image!r} is not pinned by digest",
            hint=f"set {IMAGE_SETTING} to REPOSITORY@sha256:<64 hex> (see `crane digest` or the ECR console)",
        )
    ecr = _ECR_HOST.match(image)
    if ecr and ecr.group(1) != env.region:
        raise PolicyViolation(
            f"model verifier image {image.split('@')[0]} is in {ecr.group(1)}, outside {env.region}",
            hint=f"push the image to the environment's ECR in {env.region} and pin that copy",
        )
    return image


def security_context(uid: int) -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,  # always: it writes only the model volume and /tmp
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def init_container(model: ServedModel, env: Environment, opts: ServingOptions, uid: int) -> dict[str, Any]:
    image = check_image(opts.verifier_image, env)
    return {
        "name": CONTAINER_NAME,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": list(ENTRY_POINT),
        "args": [
            "--storage-uri", model.storage_uri,
            "--model-dir", MODEL_MOUNT,
            # The released version, not just "something signed": a validly signed older version
            # copied over this prefix would otherwise pass.
            "--expected-digest", model.digest,
            "--trusted-keys", KEYS_MOUNT,
        ],
        "env": [
            {"name": "AWS_REGION", "value": env.region},
            {"name": "AWS_DEFAULT_REGION", "value": env.region},
            {"name": "HOME", "value": "/tmp"},  # noqa: S108 - an emptyDir (the root FS is read-only)
        ],
        "resources": {
            "requests": {"cpu": "100m", "memory": "256Mi"},
            # Hashing runs one thread per file: two cores keep large models quick to verify.
            "limits": {"cpu": "2", "memory": "1Gi"},
        },
        "securityContext": security_context(uid),
        # The failure message (naming the file) is what KServe copies into lastFailureInfo.
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [
            {"name": MODEL_VOLUME, "mountPath": MODEL_MOUNT},
            {"name": KEYS_VOLUME, "mountPath": KEYS_MOUNT, "readOnly": True},
            {"name": TMP_VOLUME, "mountPath": "/tmp"},  # noqa: S108 - an emptyDir
        ],
    }


def volumes(opts: ServingOptions) -> list[dict[str, Any]]:
    return [
        {"name": MODEL_VOLUME, "emptyDir": {}},
        # optional: false (the default): without the environment's trusted keys the pod never starts.
        {"name": KEYS_VOLUME, "configMap": {"name": opts.trusted_keys_configmap, "defaultMode": 0o444}},
        {"name": TMP_VOLUME, "emptyDir": {"sizeLimit": "64Mi"}},
    ]


def model_mount() -> dict[str, Any]:
    """The model server sees the verified bytes read-only: nothing in the pod can change them."""
    return {"name": MODEL_VOLUME, "mountPath": MODEL_MOUNT, "readOnly": True}
