"""``mlctl model optimize``: from a registered, signed ONNX version to a signed Triton repository
registered as a derived version, with the lineage of how it was made.

Nothing unverified is built and nothing that fails parity is registered. The build runs in
process when TensorRT is importable here, otherwise as a Job on the environment's GPU pool.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from blueprints.gpu_catalog import gpu_info
from blueprints.schema import Environment
from control_plane import audit, events, registry
from control_plane.artifacts.base import sha256_file
from control_plane.emulator.aws import client_kwargs
from control_plane.errors import InfraError, MlctlError, PolicyViolation
from control_plane.gpu.preflight import check_engine_compatible
from control_plane.optimize import parity, triton, trt_inprocess
from control_plane.optimize.job import BuildRequest, JobRunner, build_pool, parse_result, render_build
from control_plane.optimize.job_steps import split_s3
from control_plane.optimize.onnx_io import read_interface
from control_plane.optimize.settings import load_settings

TARGETS = ("onnx", "tensorrt")
PRECISIONS = ("fp32", "fp16", "int8")
VALIDATION_FILES = ("validation.npz", "eval.npz")


@dataclass(frozen=True)
class OptimizeResult:
    source: str
    derived: str
    target: str
    precision: str
    build: str  # "none" | "in-process" | "cluster-job:<name>"
    parity: dict[str, Any] | None
    lineage: dict[str, Any] = field(default_factory=dict)


def _single_onnx(model_dir: Path, ref: str) -> Path:
    found = sorted(p for p in model_dir.rglob("*.onnx") if p.is_file())
    if len(found) != 1:
        raise MlctlError(
            f"{ref} holds {len(found)} .onnx files; optimization needs exactly one",
            hint="register the model as ONNX first (control_plane.optimize.export has scikit-learn and PyTorch "
            "exporters)",
        )
    return found[0]


def _validation_samples(model_dir: Path, limit: int = 256) -> np.ndarray | None:
    for name in VALIDATION_FILES:
        path = model_dir / name
        if path.exists():
            with np.load(path) as data:
                key = "X" if "X" in data else data.files[0]
                return np.asarray(data[key], dtype=np.float32)[:limit]
    return None


def derived_version(version: str, target: str, precision: str, cc: str | None = None) -> str:
    base = f"{version}+{target}" if target == "onnx" else f"{version}+trt.{precision}"
    return f"{base}.sm{cc.replace('.', '')}" if cc else base


def _s3(env: Environment) -> Any:
    import boto3

    return boto3.client("s3", **client_kwargs(env))


def _upload_build_input(env: Environment, build_id: str, model_dir: Path, name: str, version: str,
                        samples: np.ndarray) -> str:
    """Put what the Job's fetch step needs under builds/<id>/input/: the exact registered bytes,
    their signature and public key, and the validation samples."""
    s3 = _s3(env)
    bucket = env.registries.model_bucket
    prefix = f"builds/{build_id}/input"
    extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": f"alias/{env.name}-artifacts"}
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        s3.upload_file(str(path), bucket, f"{prefix}/model/{path.relative_to(model_dir).as_posix()}", ExtraArgs=extra)
    bundle, pem = registry.signature_material(name, version)
    s3.put_object(Bucket=bucket, Key=f"{prefix}/signature/bundle.json", Body=bundle, **extra)
    s3.put_object(Bucket=bucket, Key=f"{prefix}/signature/signer.pub", Body=pem, **extra)
    polygraphy_inputs = [{"input": {"values": row.tolist()}} for row in samples[:, None, :]]
    s3.put_object(Bucket=bucket, Key=f"{prefix}/validation.json", Body=json.dumps(polygraphy_inputs).encode(), **extra)
    return f"s3://{bucket}/{prefix}"


def _read_build_output(env: Environment, output_prefix: str, dest: Path) -> tuple[dict[str, Any], Path]:
    from botocore.exceptions import ClientError

    s3 = _s3(env)
    bucket, prefix = split_s3(output_prefix)
    try:
        result = parse_result(s3.get_object(Bucket=bucket, Key=f"{prefix}/result.json")["Body"].read())
        plan = dest / "model.plan"
        s3.download_file(bucket, f"{prefix}/model.plan", str(plan))
    except ClientError as exc:
        raise InfraError(f"the build job finished but left no result under {output_prefix}: {exc}",
                         hint="check the upload step's log (kubectl logs job/<name> -c upload)") from None
    actual = sha256_file(plan)  # engines run to GBs: stream, do not read whole
    if actual != result["plan_sha256"]:
        raise PolicyViolation(
            f"model.plan under {output_prefix} (sha256 {actual[:16]}…) is not the engine the job built "
            f"({result['plan_sha256'][:16]}…)",
            hint="the build output was altered after the job wrote it; rebuild",
        )
    return result, plan


def check_options(target: str, precision: str) -> None:
    """A usage error for an unknown target or precision (before any permission check or build)."""
    if target not in TARGETS:
        raise MlctlError(f"--target {target!r} is not supported", hint="use tensorrt or onnx")
    if precision not in PRECISIONS:
        raise MlctlError(f"--precision {precision!r} is not supported", hint="use fp32, fp16 or int8")


def optimize(
    name: str,
    version: str,
    *,
    env: Environment,
    target: str,
    precision: str = "fp16",
    signer_kind: str = "local",
    kube_api_client: Any = None,
    in_process: bool | None = None,
    timeout: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> OptimizeResult:
    """Build, gate (parity), register and sign the derived version. Not authorized here: the caller
    (``control_plane.services.models.optimize``) checks model.optimize, model.register, model.sign."""
    say = progress or (lambda _msg: None)
    ref = f"{name}:{version}"
    check_options(target, precision)
    source = registry.get_version(name, version)
    if not source.signature.signed:
        raise PolicyViolation(f"{ref} is not signed; only signed models are optimized",
                              hint=f"mlctl model sign {ref}")
    say(f"verifying {ref} ({source.root_digest[:23]}…)")
    registry.verify(name, version)  # the artifact-store copy, against the registered signature

    with tempfile.TemporaryDirectory(prefix="mlctl-optimize-") as tmp:
        work = Path(tmp)
        model_dir = registry.materialize(name, version, work / "source")
        onnx_path = _single_onnx(model_dir, ref)
        interface = read_interface(onnx_path)
        samples = _validation_samples(model_dir)
        lineage: dict[str, Any] = {"optimizer": "mlctl", "target": target, "precision": precision,
                                   "source_root": source.root_digest}
        report: parity.ParityReport | None = None
        build = "none"
        if target == "onnx":
            files = {"any": onnx_path}
            lineage["precision"] = "fp32"
            precision = "fp32"
            derived = derived_version(version, "onnx", precision)
        else:
            if samples is None:
                raise PolicyViolation(
                    f"{ref} has no validation samples ({' or '.join(VALIDATION_FILES)}) for the parity gate",
                    hint="register the model with its validation set (an .npz with X)",
                )
            pool = build_pool(env)
            model_gpu, pool_cc = gpu_info(str(env.cloud), pool.instance_type) or ("unknown", "unknown")
            use_local = trt_inprocess.available() if in_process is None else in_process
            if use_local:
                say("building the engine in process (TensorRT importable here)")
                engine = trt_inprocess.build_engine(onnx_path, work / "engine", interface, precision=precision)
                report = parity.run_parity(parity.onnx_runner(str(onnx_path)),
                                           trt_inprocess.engine_runner(engine.plan_path), samples,
                                           precision=precision)
                facts = {"gpu_model": engine.gpu_model, "compute_capability": engine.compute_capability,
                         "tensorrt_version": engine.tensorrt_version, "container_digest": None}
                plan_path = engine.plan_path
                build = "in-process"
            else:
                facts, plan_path, report, build = _cluster_build(
                    name, version, env, model_dir, interface, samples, precision, kube_api_client,
                    timeout, say, work,
                )
            check_engine_compatible(str(facts["compute_capability"]), pool_cc,
                                    what=f"the engine (built on {facts['gpu_model']})")
            lineage.update(facts, pool=pool.name, pool_gpu_model=model_gpu)
            if not report.passed:
                audit.record(action="model.optimize", subject=ref, decision="deny", reasons=list(report.reasons),
                             details={"target": target, "precision": precision, "parity": report.as_dict()})
                events.emit("model.optimize.failed", ref, {"reasons": list(report.reasons)})
                raise PolicyViolation(
                    f"parity gate failed for {ref} at {precision}: " + "; ".join(report.reasons),
                    hint="try a higher precision (fp16 → fp32), or check the model for ops TensorRT approximates",
                )
            files = {str(facts["compute_capability"]): plan_path}
            derived = derived_version(version, "tensorrt", precision, str(facts["compute_capability"]))
        if report is not None:
            lineage["parity"] = report.as_dict()
        repo_root = work / "triton"
        triton.write_repository(repo_root, name, interface, target=target, model_files=files)
        (repo_root / "optimization.json").write_text(json.dumps(lineage, indent=2, sort_keys=True, default=str))
        say(f"registering {name}:{derived}")
        registry.register(name, derived, repo_root, derived_from=ref, lineage_extra=lineage,
                          classification=source.classification,
                          # the source's code pin as recorded (an unrecorded pin stays unrecorded, it is
                          # not re-validated as a commit id: optimizing never depends on the training code)
                          code_pin=source.lineage.get("code"))
        registry.sign(name, derived, signer_kind=signer_kind, env=env if signer_kind == "kms" else None)
    audit.record(action="model.optimize", subject=ref, digests={"source": source.root_digest},
                 details={"derived": f"{name}:{derived}", "target": target, "precision": precision, "build": build})
    events.emit("model.optimized", f"{name}:{derived}", {"source": ref, "target": target, "precision": precision})
    return OptimizeResult(source=ref, derived=f"{name}:{derived}", target=target, precision=precision, build=build,
                          parity=report.as_dict() if report else None, lineage=lineage)


def _cluster_build(
    name: str, version: str, env: Environment, model_dir: Path, interface: Any, samples: np.ndarray,
    precision: str, kube_api_client: Any, timeout: float | None, say: Callable[[str], None], work: Path,
) -> tuple[dict[str, Any], Path, parity.ParityReport, str]:
    if precision == "int8":
        raise PolicyViolation("int8 builds on the cluster need a calibration cache, which this version has not",
                              hint="use fp16 (the recommended precision on tensor-core GPUs)")
    settings = load_settings()
    if kube_api_client is None:
        from kubernetes import config as kconfig

        try:
            kube_api_client = kconfig.new_client_from_config()
        except Exception as exc:  # kubeconfig missing or invalid
            raise InfraError(f"no Kubernetes access for the build job: {exc}",
                             hint="set KUBECONFIG / --kubeconfig to the environment's cluster") from None
    build_id = uuid.uuid4().hex[:12]
    say(f"uploading the signed model for build {build_id}")
    source_uri = _upload_build_input(env, build_id, model_dir, name, version, samples)
    req = BuildRequest(
        build_id=build_id, model_name=name, model_version=version, source_uri=source_uri,
        output_prefix=f"s3://{env.registries.model_bucket}/builds/{build_id}/output",
        precision=precision, interface=interface,
    )
    objects = render_build(req, env, settings)
    runner = JobRunner(kube_api_client)
    job_name = runner.submit(objects)
    say(f"submitted job {settings.namespace}/{job_name} on pool {build_pool(env).name}; waiting")
    runner.wait(settings.namespace, job_name, timeout=timeout or settings.timeout_seconds, progress=say)
    result, plan = _read_build_output(env, req.output_prefix, work)
    parity_result = result["parity"]
    passed = parity_result.get("status") == "passed"
    atol, rtol, top1 = parity.TOLERANCES[precision]
    report = parity.ParityReport(
        precision=precision, samples=len(samples),
        max_abs_error=float(parity_result.get("max_abs_error", float("nan"))),
        max_rel_error=float(parity_result.get("max_rel_error", float("nan"))),
        top1_agreement=parity_result.get("top1_agreement"),
        tolerance_abs=atol, tolerance_rel=rtol, tolerance_top1=top1, passed=passed,
        reasons=() if passed else (f"Polygraphy comparison failed in job {job_name}: "
                                   + str(parity_result.get("log_tail", ""))[-400:],),
    )
    facts = {"gpu_model": result["gpu_model"], "compute_capability": str(result["compute_capability"]),
             "tensorrt_version": result["tensorrt_version"], "container_digest": settings.tensorrt_image.split("@")[1],
             "build_job": f"{settings.namespace}/{job_name}", "driver_version": result.get("driver_version")}
    return facts, plan, report, f"cluster-job:{job_name}"
