"""The TensorRT build as a Kubernetes Job on the environment's GPU pool.

A TensorRT engine is specific to the GPU model and TensorRT version that built it, and the builder
is not on PyPI, so engines are built where they will run: NVIDIA's TensorRT container on the
target pool. The Job runs three steps in order (init containers run sequentially, the main
container last):

1. ``fetch`` (tools image): download the ONNX model from the in-region registry and verify its
   OpenSSF signature against the registered public key — an unverified model is never built;
2. ``build`` (TensorRT image): ``trtexec`` with the chosen precision and optimization profiles,
   then the parity check against ONNX Runtime (Polygraphy), writing ``result.json``;
3. ``upload`` (tools image): put ``model.plan`` and ``result.json`` under ``builds/<id>/`` in the
   registry bucket (SSE-KMS).

The control plane submits it, waits with progress, then reads ``result.json``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from blueprints.schema import Environment, NodePool
from control_plane.errors import InfraError, MlctlError
from control_plane.optimize.onnx_io import ModelInterface
from control_plane.optimize.parity import TOLERANCES
from control_plane.optimize.settings import OptimizeSettings

BUILD_LABEL = "sovereign-mlops.ae/build-id"

BUILD_SCRIPT = r"""#!/bin/bash
# Runs in NVIDIA's TensorRT container. Inputs in /work/in, outputs in /work/out.
set -euo pipefail
in=/work/in; out=/work/out; mkdir -p "$out"
args=(--onnx="$in/model.onnx" --saveEngine="$out/model.plan" --skipInference)
case "$PRECISION" in
  fp16) args+=(--fp16) ;;
  int8) args+=(--int8 --calib="$in/calibration.cache") ;;
esac
[ -n "${SHAPES_MIN:-}" ] && args+=(--minShapes="$SHAPES_MIN" --optShapes="$SHAPES_OPT" --maxShapes="$SHAPES_MAX")
trtexec "${args[@]}" 2>&1 | tail -n 50
# Parity: the source model under ONNX Runtime vs the engine, on the registered validation samples.
polygraphy run "$in/model.onnx" --onnxrt --load-inputs "$in/validation.json" \
  --save-outputs "$out/onnxrt.json" > "$out/parity.log" 2>&1
if polygraphy run "$out/model.plan" --model-type engine --trt --load-inputs "$in/validation.json" \
    --load-outputs "$out/onnxrt.json" --atol "$PARITY_ATOL" --rtol "$PARITY_RTOL" \
    --check-error-stat max >> "$out/parity.log" 2>&1; then parity=passed; else parity=failed; fi
python3 - "$out" "$parity" <<'PY'
import hashlib, json, os, subprocess, sys
out, parity = sys.argv[1], sys.argv[2]
smi = subprocess.run(["nvidia-smi", "--query-gpu=name,compute_cap,driver_version", "--format=csv,noheader"],
                     capture_output=True, text=True).stdout.strip().splitlines()[0].split(", ")
import tensorrt
digest = hashlib.sha256(open(os.path.join(out, "model.plan"), "rb").read()).hexdigest()
json.dump({"gpu_model": smi[0], "compute_capability": smi[1], "driver_version": smi[2],
           "tensorrt_version": tensorrt.__version__, "plan_sha256": digest,
           "precision": os.environ["PRECISION"], "parity": {"status": parity,
           "log_tail": open(os.path.join(out, "parity.log")).read()[-2000:]}},
          open(os.path.join(out, "result.json"), "w"))
PY
[ "$parity" = passed ]
"""


@dataclass(frozen=True)
class BuildRequest:
    build_id: str
    model_name: str
    model_version: str
    source_uri: str  # s3://bucket/key-prefix of the registered ONNX model
    output_prefix: str  # s3://bucket/builds/<id>/
    precision: str
    interface: ModelInterface
    max_batch: int = 64


def build_pool(env: Environment) -> NodePool:
    """The GPU pool labelled for builds (``workload: tensorrt-build``), else the first GPU pool."""
    pools = env.cluster.gpu_pools
    if not pools:
        raise MlctlError(
            f"environment '{env.name}' has no GPU pool to build TensorRT engines on",
            hint="add cluster.gpu_pools to the blueprint, or use --target onnx",
        )
    for pool in pools:
        if pool.labels.get("workload") == "tensorrt-build":
            return pool
    return pools[0]


def _shapes(interface: ModelInterface, max_batch: int) -> dict[str, str]:
    """trtexec optimization profiles from the declared input shapes (batch 1 / max/2 / max)."""
    if not all(t.batch_dynamic for t in interface.inputs):
        return {}

    def fmt(batch: int) -> str:
        return ",".join(f"{t.name}:" + "x".join(str(d) for d in (batch, *t.shape[1:])) for t in interface.inputs)

    return {"SHAPES_MIN": fmt(1), "SHAPES_OPT": fmt(max(1, max_batch // 2)), "SHAPES_MAX": fmt(max_batch)}


def render_build(req: BuildRequest, env: Environment, settings: OptimizeSettings) -> list[dict[str, Any]]:
    """ServiceAccount, ConfigMap, NetworkPolicy and Job for one build."""
    pool = build_pool(env)
    ns = settings.namespace
    name = f"trt-build-{req.build_id}"
    labels = {
        "app.kubernetes.io/managed-by": "mlctl",
        "app.kubernetes.io/component": "tensorrt-build",
        BUILD_LABEL: req.build_id,
    }
    atol, rtol, _ = TOLERANCES[req.precision]
    sa: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": settings.service_account, "namespace": ns, "labels": labels},
        "automountServiceAccountToken": False,
    }
    if settings.role_arn:
        sa["metadata"]["annotations"] = {"eks.amazonaws.com/role-arn": settings.role_arn}
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "data": {"build.sh": BUILD_SCRIPT},
    }
    # No public egress: DNS and HTTPS to the VPC (where the interface endpoints for S3/ECR/STS live).
    netpol = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {
            "podSelector": {"matchLabels": {BUILD_LABEL: req.build_id}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [],
            "egress": [
                {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
                {
                    "to": [{"ipBlock": {"cidr": str(env.network.vpc_cidr)}}],
                    "ports": [{"protocol": "TCP", "port": 443}],
                },
            ],
        },
    }
    security = {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    env_vars = [
        {"name": "PRECISION", "value": req.precision},
        {"name": "SOURCE_URI", "value": req.source_uri},
        {"name": "OUTPUT_PREFIX", "value": req.output_prefix},
        {"name": "MODEL_NAME", "value": req.model_name},
        {"name": "MODEL_VERSION", "value": req.model_version},
        {"name": "PARITY_ATOL", "value": str(atol)},
        {"name": "PARITY_RTOL", "value": str(rtol)},
        {"name": "AWS_REGION", "value": env.region},
        *({"name": k, "value": v} for k, v in _shapes(req.interface, req.max_batch).items()),
    ]
    mounts = [{"name": "work", "mountPath": "/work"}, {"name": "scripts", "mountPath": "/scripts"}]
    tools = {"image": settings.tools_image, "env": env_vars, "volumeMounts": mounts, "securityContext": {
        **security, "readOnlyRootFilesystem": True}}
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {
            "backoffLimit": 0,  # a failed build is reported, not retried blindly on a scarce GPU
            "activeDeadlineSeconds": settings.timeout_seconds,
            "ttlSecondsAfterFinished": 86400,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": settings.service_account,
                    "automountServiceAccountToken": True,  # IRSA needs the projected token
                    "restartPolicy": "Never",
                    "nodeSelector": {"eks.amazonaws.com/nodegroup": pool.name, **pool.labels},
                    "tolerations": [
                        {"key": t.key, "operator": "Equal", "value": t.value, "effect": t.effect}
                        for t in pool.effective_taints
                    ],
                    "securityContext": {"fsGroup": 1000},
                    "volumes": [
                        {"name": "work", "emptyDir": {}},
                        {"name": "scripts", "configMap": {"name": name, "defaultMode": 0o555}},
                    ],
                    "initContainers": [
                        {"name": "fetch", **tools,
                         "command": ["python", "-m", "control_plane.optimize.job_steps", "fetch"]},
                        {
                            "name": "build",
                            "image": settings.tensorrt_image,
                            "command": ["/bin/bash", "/scripts/build.sh"],
                            "env": env_vars,
                            "volumeMounts": mounts,
                            "securityContext": security,
                            "resources": {"limits": {"nvidia.com/gpu": "1", "memory": "16Gi"},
                                          "requests": {"nvidia.com/gpu": "1", "cpu": "2", "memory": "8Gi"}},
                        },
                    ],
                    "containers": [
                        {"name": "upload", **tools,
                         "command": ["python", "-m", "control_plane.optimize.job_steps", "upload"]},
                    ],
                },
            },
        },
    }
    return [sa, config_map, netpol, job]


class JobRunner:
    """Submits rendered objects with the official client and waits for the Job."""

    def __init__(self, api_client: Any) -> None:
        from kubernetes import client

        self._core = client.CoreV1Api(api_client)
        self._batch = client.BatchV1Api(api_client)
        self._net = client.NetworkingV1Api(api_client)

    def submit(self, objects: list[dict[str, Any]]) -> str:
        from kubernetes.client.exceptions import ApiException

        job_name = ""
        for obj in objects:
            ns, kind = obj["metadata"]["namespace"], obj["kind"]
            create: Callable[..., Any] = {  # type: ignore[assignment]
                "ServiceAccount": self._core.create_namespaced_service_account,
                "ConfigMap": self._core.create_namespaced_config_map,
                "NetworkPolicy": self._net.create_namespaced_network_policy,
                "Job": self._batch.create_namespaced_job,
            }[kind]
            try:
                create(ns, obj)
            except ApiException as exc:
                if exc.status == 409 and kind == "ServiceAccount":
                    continue  # shared across builds
                raise InfraError(
                    f"creating {kind} {obj['metadata']['name']} failed: {exc.status} {exc.reason}",
                    hint="check the kubeconfig context and that the namespace exists with RBAC for mlctl",
                ) from None
            if kind == "Job":
                job_name = obj["metadata"]["name"]
        return job_name

    def wait(
        self, namespace: str, name: str, *, timeout: float, poll: float = 1.0,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            from kubernetes.client import V1JobStatus

            job = self._batch.read_namespaced_job_status(name, namespace)
            status = job.status or V1JobStatus()  # a Job the controller has not seen yet has none
            conditions = {c.type: c for c in (status.conditions or []) if c.status == "True"}
            if "Complete" in conditions:
                return
            if "Failed" in conditions:
                cond = conditions["Failed"]
                raise InfraError(
                    f"TensorRT build job {name} failed: {cond.reason or ''} {cond.message or ''}".strip()
                    + "\n--- log tail ---\n" + self.log_tail(namespace, name),
                    hint="read the log tail above; parity failures mean the engine is not the approved model",
                )
            state = f"active={status.active or 0} succeeded={status.succeeded or 0} failed={status.failed or 0}"
            if progress and state != last:
                progress(state)
                last = state
            time.sleep(poll)
        raise InfraError(f"TensorRT build job {name} did not finish within {timeout:.0f}s",
                         hint="look at the pod events (kubectl describe job); GPU capacity may be exhausted")

    def log_tail(self, namespace: str, job_name: str, lines: int = 40) -> str:
        from kubernetes.client.exceptions import ApiException

        try:
            pods = self._core.list_namespaced_pod(namespace, label_selector=f"job-name={job_name}").items
        except ApiException:
            return "(no pod logs available)"
        tails: list[str] = []
        for pod in pods:
            pod_name = str(pod.metadata.name) if pod.metadata else ""
            for container in ("fetch", "build", "upload"):
                try:
                    text = self._core.read_namespaced_pod_log(
                        pod_name, namespace, container=container, tail_lines=lines
                    )
                except ApiException:
                    continue
                if text:
                    tails.append(f"[{container}] {text}")
        return "\n".join(tails) or "(no pod logs available)"


def parse_result(raw: bytes) -> dict[str, Any]:
    try:
        result = json.loads(raw)
    except ValueError:
        raise InfraError("build result.json is not JSON", hint="the build job did not finish writing it") from None
    missing = {"gpu_model", "compute_capability", "tensorrt_version", "plan_sha256", "precision", "parity"} - set(
        result
    )
    if missing:
        raise InfraError(f"build result.json lacks {', '.join(sorted(missing))}", hint="rebuild with this mlctl")
    return dict(result)
