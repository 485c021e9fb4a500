"""InferenceService manifests for a model version on an environment's GPU pool.

The output is a plain dict (what ``kubectl apply`` and the ``kubernetes`` client take), built from
the model and the blueprint only, so the same inputs always render the same object. Every object
rendered here is validated against the real KServe CRD in the tests (``control_plane.kserve.crds``).
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any, Final

from blueprints.schema import Cloud, Environment, NodePool
from control_plane.errors import BlueprintError, PolicyViolation
from control_plane.kserve import naming, verification
from control_plane.kserve.model import Colour, DeploymentMode, ModelFormat, ServedModel, ServingOptions

API_VERSION: Final = "serving.kserve.io/v1beta1"
KIND: Final = "InferenceService"
ANNOTATION_DEPLOYMENT_MODE: Final = "serving.kserve.io/deploymentMode"
# Knative mode: exposes "prev-" and "latest-" tagged hosts so smoke tests reach the candidate
# revision before it takes production traffic.
ANNOTATION_TAG_ROUTING: Final = "serving.kserve.io/enable-tag-routing"
ANNOTATION_PROMETHEUS: Final = "serving.kserve.io/enable-prometheus-scraping"
GPU_RESOURCE: Final = "nvidia.com/gpu"
TRITON_METRICS_ARG: Final = "--metrics-config=summary_latencies=true"
TRITON_UID: Final = 1000  # the non-root user of NVIDIA's Triton image (and of KServe's runtime spec)


def isvc_name(service: str, colour: Colour | str | None, mode: DeploymentMode) -> str:
    """Standard mode runs one InferenceService per colour; Knative mode one per service (revisions)."""
    naming.check_service_name(service)
    if mode is DeploymentMode.knative or colour is None:
        return service
    return f"{service}-{Colour(colour)}"


def predictor_service_name(isvc: str) -> str:
    """The Kubernetes Service KServe's Standard mode creates in front of the predictor (port 80)."""
    return f"{isvc}-predictor"


def gpu_pool(env: Environment, name: str | None) -> NodePool:
    pools = env.cluster.gpu_pools
    if not pools:
        raise BlueprintError(
            f"environment '{env.name}' has no GPU pool to serve on",
            hint="add a pool under cluster.gpu_pools in the blueprint (see blueprints/uae-prod-aws.yaml)",
        )
    if name is None:
        # Prefer the pool the blueprint marks for inference (uae-prod-aws also has a build pool).
        return next((p for p in pools if p.labels.get("workload") == "inference"), pools[0])
    for pool in pools:
        if pool.name == name:
            return pool
    raise BlueprintError(
        f"environment '{env.name}' has no GPU pool named '{name}'",
        hint=f"use one of: {', '.join(p.name for p in pools)}",
    )


def check_storage_uri(uri: str, env: Environment) -> str:
    """Refuse a model that does not come from the environment's own, in-region registry bucket."""
    if env.cloud is not Cloud.aws:
        raise PolicyViolation(
            f"serving on {env.cloud} is not supported yet (environment '{env.name}')",
            hint="release to an AWS environment (me-central-1); Azure is infrastructure synthesis only today",
        )
    prefix = f"s3://{env.registries.model_bucket}/"
    key = uri[len(prefix) :] if uri.startswith(prefix) else ""
    normalised = posixpath.normpath(key) if key else ""
    if not key or normalised.startswith("..") or normalised != key.rstrip("/") or "//" in key:
        raise PolicyViolation(
            f"storageUri {uri!r} is outside the model registry of environment '{env.name}'",
            hint=(
                f"serve from the in-region registry: {prefix}<model>/<version>/ "
                "(push the model with `mlctl model register`, which puts it there)"
            ),
        )
    return uri


def _labels(model: ServedModel, service: str, colour: Colour | None) -> dict[str, str]:
    labels = {
        naming.LABEL_MANAGED_BY: naming.MANAGED_BY,
        naming.LABEL_SERVICE: service,
        naming.LABEL_MODEL: naming.label_value(model.name),
        naming.LABEL_VERSION: naming.label_value(model.version),
        naming.LABEL_DIGEST: naming.digest_label(model.digest),
        naming.LABEL_RELEASE: naming.label_value(model.release_id),
    }
    if colour is not None:
        labels[naming.LABEL_COLOUR] = str(colour)
    return labels


def _tolerations(pool: NodePool) -> list[dict[str, str]]:
    return [
        {"key": t.key, "operator": "Equal", "value": t.value, "effect": t.effect}
        for t in pool.effective_taints
    ]


def render_inference_service(
    model: ServedModel,
    env: Environment,
    *,
    service: str,
    colour: Colour | str | None = None,
    options: ServingOptions | None = None,
    canary_traffic_percent: int | None = None,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The InferenceService that serves ``model`` as ``service`` (one colour of it in Standard mode).

    Knative mode ignores ``colour`` (one InferenceService, a new revision per release) and takes
    ``canary_traffic_percent``: the share the new revision gets while the previous one keeps the rest.
    """
    opts = options or ServingOptions()
    mode = opts.mode
    chosen_colour = None if mode is DeploymentMode.knative or colour is None else Colour(colour)
    if mode is DeploymentMode.standard and chosen_colour is None:
        raise PolicyViolation(
            "Standard mode needs a colour (blue or green) for each InferenceService",
            hint="pass colour='blue' or 'green'; the HTTPRoute splits traffic between the two",
        )
    if canary_traffic_percent is not None:
        if mode is not DeploymentMode.knative:
            raise PolicyViolation(
                "canaryTrafficPercent applies to Knative mode only",
                hint="in Standard mode set the weights on the service's HTTPRoute instead",
            )
        if not 0 <= canary_traffic_percent <= 100:
            raise PolicyViolation(
                f"canary traffic {canary_traffic_percent}% is outside 0..100", hint="use a percentage"
            )
    name = isvc_name(service, chosen_colour, mode)
    check_storage_uri(model.storage_uri, env)
    # A CPU-only server (gpus=0) must not hold a GPU node: no pool placement then.
    pool = gpu_pool(env, opts.gpu_pool) if opts.gpus else None
    labels = _labels(model, service, chosen_colour)

    all_annotations = {
        **(annotations or {}),
        ANNOTATION_DEPLOYMENT_MODE: mode.value,  # always explicit: a cluster default can change under us
        ANNOTATION_PROMETHEUS: "true",  # analysis reads the model server's metrics
        naming.ANNOTATION_MODEL: model.name,
        naming.ANNOTATION_VERSION: model.version,
        naming.ANNOTATION_DIGEST: model.digest,
        naming.ANNOTATION_RELEASE: model.release_id,
    }
    if mode is DeploymentMode.knative:
        all_annotations[ANNOTATION_TAG_ROUTING] = "true"

    compute: dict[str, str] = {"cpu": opts.cpu, "memory": opts.memory}
    if opts.gpus:
        compute[GPU_RESOURCE] = str(opts.gpus)
    container_security: dict[str, Any] = {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "runAsNonRoot": True,
        "runAsUser": TRITON_UID,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": opts.read_only_root_fs,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    model_spec: dict[str, Any] = {
        # TensorRT plans are Triton's "tensorrt" format (engines bound to the GPU they were built
        # for); everything else we ship is ONNX (Triton's onnxruntime backend).
        "modelFormat": {"name": "tensorrt" if model.format is ModelFormat.tensorrt else "onnx"},
        "runtime": opts.runtime,
        "protocolVersion": "v2",
        "storageUri": model.storage_uri,
        # Appended to the runtime's tritonserver arguments: latency quantiles for release analysis
        # (control_plane.kserve.prometheus reads nv_inference_request_summary_us).
        "args": [TRITON_METRICS_ARG],
        "resources": {"requests": dict(compute), "limits": dict(compute)},
        "securityContext": container_security,
    }
    predictor: dict[str, Any] = {
        "minReplicas": opts.min_replicas,
        "maxReplicas": opts.max_replicas,
        "serviceAccountName": opts.service_account,
        # IRSA injects its own projected token; the Kubernetes API token is not needed by a model server.
        "automountServiceAccountToken": False,
        "labels": dict(labels),  # onto the pods, so metrics and logs carry the model identity
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": TRITON_UID,
            "runAsGroup": TRITON_UID,
            "fsGroup": TRITON_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "model": model_spec,
    }
    if pool is not None:
        predictor["tolerations"] = _tolerations(pool)
        if pool.labels:
            predictor["nodeSelector"] = dict(pool.labels)
    # The model is downloaded and verified by our storage-initializer (control_plane.kserve.verification)
    # before the model server starts; the server mounts the verified bytes read-only.
    predictor["initContainers"] = [verification.init_container(model, env, opts, TRITON_UID)]
    predictor["volumes"] = verification.volumes(opts)
    model_spec["volumeMounts"] = [verification.model_mount()]
    if opts.read_only_root_fs:
        # Triton and its backends write scratch files under /tmp; everything else stays read-only.
        predictor["volumes"].append({"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}})
        model_spec["volumeMounts"].append({"name": "tmp", "mountPath": "/tmp"})  # noqa: S108 - an emptyDir
    if canary_traffic_percent is not None:
        predictor["canaryTrafficPercent"] = canary_traffic_percent

    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": name,
            "namespace": opts.namespace,
            "labels": labels,
            "annotations": all_annotations,
        },
        "spec": {"predictor": predictor},
    }
