"""`model optimize` end to end: the ONNX target on CPU, and the TensorRT cluster build against a
Kubernetes API emulator (a fixture plays the GPU node: it completes the Job and leaves the plan and
result.json in the registry bucket on the AWS emulator), through parity reading, registration of the
derived version with its lineage, and signing."""

from __future__ import annotations

import hashlib
import json
import threading
import time

import boto3
import pytest

from blueprints import load_environment
from control_plane import registry
from control_plane.errors import InfraError, PolicyViolation
from control_plane.optimize import triton
from control_plane.optimize.service import optimize
from control_plane.samples.digits import build_sample_model
from control_plane.settings import BLUEPRINTS_DIR
from tests.k8s_emulator import KubernetesApi

DIGEST = "sha256:" + "cd" * 32
BUILTINS = (
    ("v1/namespaces", "Namespace"),
    ("batch/v1/jobs", "Job"),
    ("v1/pods", "Pod"),
    ("v1/configmaps", "ConfigMap"),
    ("v1/serviceaccounts", "ServiceAccount"),
    ("networking.k8s.io/v1/networkpolicies", "NetworkPolicy"),
)


@pytest.fixture()
def engineer(mlctl_home, monkeypatch):
    from control_plane.access.roles import write_assignments

    write_assignments({"eli": ["ml-engineer"]})
    monkeypatch.setenv("MLCTL_ACTOR", "eli")


@pytest.fixture()
def signed_sample(engineer, tmp_path):
    model = build_sample_model(tmp_path / "digits", variant="v1")
    registry.register("digits", "1", model.path, datasets=["s3://uae-local-data/digits.csv@sha256:" + "0" * 64],
                      code_commit="0123456789abcdef0123456789abcdef01234567")
    registry.sign("digits", "1")
    return model


def test_onnx_target_registers_a_signed_triton_repository(signed_sample, tmp_path):
    env = load_environment(BLUEPRINTS_DIR / "uae-local.yaml")
    result = optimize("digits", "1", env=env, target="onnx")
    assert result.derived == "digits:1+onnx" and result.build == "none"
    derived = registry.get_version("digits", "1+onnx")
    assert derived.derived_from == "digits:1"
    assert derived.lineage["extra"]["target"] == "onnx"
    assert derived.signature.signed
    assert set(derived.files) == {"digits/config.pbtxt", "digits/1/model.onnx", "optimization.json"}
    copy = registry.materialize("digits", "1+onnx", tmp_path / "copy")
    config = triton.parse_config((copy / "digits" / "config.pbtxt").read_text())
    assert config.platform == "onnxruntime_onnx" and config.input[0].name == "input"
    assert (copy / "digits" / "1" / "model.onnx").read_bytes() == signed_sample.model_file.read_bytes()
    assert registry.verify("digits", "1+onnx").files == 3


def test_unsigned_model_is_not_optimized(engineer, tmp_path):
    model = build_sample_model(tmp_path / "digits", variant="v1")
    registry.register("digits", "2", model.path, code_commit="0" * 40)
    env = load_environment(BLUEPRINTS_DIR / "uae-local.yaml")
    with pytest.raises(PolicyViolation, match="not signed"):
        optimize("digits", "2", env=env, target="onnx")


class GpuNode:
    """Plays the GPU node pool: when a build Job appears, writes its outputs and sets its status."""

    def __init__(self, kube, env, *, outcome="complete", cc="8.6", parity="passed", tamper=False):
        from kubernetes import client

        self.batch = client.BatchV1Api(kube)
        self.env, self.outcome, self.cc, self.parity, self.tamper = env, outcome, cc, parity, tamper
        self.s3 = boto3.client("s3", endpoint_url=env_endpoint(), region_name="me-central-1")
        self.seen: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)

    def _run(self):
        done: set[str] = set()
        while not self._stop.is_set():
            for job in self.batch.list_namespaced_job("mlops-build").items:
                if job.metadata.name in done:
                    continue
                done.add(job.metadata.name)
                self._complete(job)
            time.sleep(0.1)

    def _complete(self, job):
        env_vars = {e.name: e.value for e in job.spec.template.spec.init_containers[1].env}
        self.seen.append({"name": job.metadata.name, "env": env_vars,
                          "node_selector": job.spec.template.spec.node_selector})
        bucket, prefix = env_vars["OUTPUT_PREFIX"].removeprefix("s3://").split("/", 1)
        # the fetch step's input is there: the signed model, its signature and the samples
        keys = [o["Key"] for o in self.s3.list_objects_v2(
            Bucket=bucket, Prefix=env_vars["SOURCE_URI"].split("/", 3)[3])["Contents"]]
        assert any(k.endswith("signature/bundle.json") for k in keys)
        plan = b"TRT-ENGINE:" + env_vars["MODEL_NAME"].encode() + b":" + env_vars["PRECISION"].encode()
        result = {
            "gpu_model": "NVIDIA A10G", "compute_capability": self.cc, "driver_version": "550.54.15",
            "tensorrt_version": "10.3.0", "plan_sha256": hashlib.sha256(plan).hexdigest(),
            "precision": env_vars["PRECISION"],
            "parity": {"status": self.parity, "max_abs_error": 0.0021, "max_rel_error": 0.003,
                       "top1_agreement": 1.0, "log_tail": "PASSED | All outputs matched" if self.parity == "passed"
                       else "FAILED | Output: 'probabilities' | max abs diff 0.31 > 0.01"},
        }
        extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "alias/uae-local-artifacts"}
        if self.outcome == "complete":
            self.s3.put_object(Bucket=bucket, Key=f"{prefix}/model.plan",
                               Body=plan + (b"tampered" if self.tamper else b""), **extra)
            self.s3.put_object(Bucket=bucket, Key=f"{prefix}/result.json", Body=json.dumps(result).encode(), **extra)
        condition = {"type": "Complete" if self.outcome == "complete" else "Failed", "status": "True",
                     "reason": None if self.outcome == "complete" else "BackoffLimitExceeded",
                     "message": None if self.outcome == "complete" else "Job has reached the specified backoff limit"}
        self.batch.patch_namespaced_job_status(job.metadata.name, "mlops-build", {"status": {
            "conditions": [condition], "succeeded": 1 if self.outcome == "complete" else 0,
            "failed": 0 if self.outcome == "complete" else 1}})


_ENDPOINT: dict[str, str] = {}


def env_endpoint() -> str:
    return _ENDPOINT["url"]


@pytest.fixture()
def cluster(aws_emulator, signed_sample, monkeypatch, tmp_path):
    _ENDPOINT["url"] = aws_emulator
    env = load_environment(BLUEPRINTS_DIR / "uae-local.yaml")
    s3 = boto3.client("s3", endpoint_url=aws_emulator, region_name="me-central-1")
    kms = boto3.client("kms", endpoint_url=aws_emulator, region_name="me-central-1")
    try:
        s3.create_bucket(Bucket=env.registries.model_bucket,
                         CreateBucketConfiguration={"LocationConstraint": "me-central-1"})
        key = kms.create_key(Description="artifacts")["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName="alias/uae-local-artifacts", TargetKeyId=key)
    except (s3.exceptions.BucketAlreadyOwnedByYou, kms.exceptions.AlreadyExistsException):
        pass
    monkeypatch.setenv("MLCTL_TENSORRT_IMAGE", f"nvcr.io/nvidia/tensorrt:24.08-py3@{DIGEST}")
    monkeypatch.setenv("MLCTL_TOOLS_IMAGE", f"123456789012.dkr.ecr.me-central-1.amazonaws.com/mlctl-tools:0.1@{DIGEST}")
    from kubernetes import config as kconfig

    with KubernetesApi(builtins=BUILTINS) as api:
        kube = kconfig.new_client_from_config(str(api.write_kubeconfig(tmp_path / "kubeconfig")))
        yield env, kube, api


def test_cluster_build_registers_a_signed_engine_with_lineage(cluster, tmp_path):
    env, kube, _api = cluster
    with GpuNode(kube, env) as node:
        result = optimize("digits", "1", env=env, target="tensorrt", precision="fp16",
                          kube_api_client=kube, in_process=False, timeout=60)
    assert result.derived == "digits:1+trt.fp16.sm86"
    assert result.build.startswith("cluster-job:trt-build-")
    (job,) = node.seen
    assert job["node_selector"]["eks.amazonaws.com/nodegroup"] == "gpu-inference"
    assert job["env"]["PRECISION"] == "fp16"
    derived = registry.get_version("digits", "1+trt.fp16.sm86")
    extra = derived.lineage["extra"]
    assert derived.derived_from == "digits:1"
    assert (extra["tensorrt_version"], extra["gpu_model"], extra["compute_capability"]) == ("10.3.0", "NVIDIA A10G", "8.6")
    assert extra["container_digest"] == DIGEST and extra["precision"] == "fp16"
    assert extra["parity"]["passed"] is True
    assert derived.signature.signed
    assert registry.verify("digits", "1+trt.fp16.sm86").files == 3
    copy = registry.materialize("digits", "1+trt.fp16.sm86", tmp_path / "copy")
    config = triton.parse_config((copy / "digits" / "config.pbtxt").read_text())
    assert config.platform == "tensorrt_plan"
    assert (copy / "digits" / "1" / "model.plan").read_bytes().startswith(b"TRT-ENGINE:digits")


@pytest.mark.parametrize(
    ("node_kwargs", "error", "match"),
    [
        ({"parity": "failed"}, PolicyViolation, "parity gate failed.*max abs diff 0.31"),
        ({"cc": "9.0"}, PolicyViolation, "built for compute capability 9.0 but the target GPUs are 8.6"),
        ({"outcome": "failed"}, InfraError, "build job trt-build-.* failed: BackoffLimitExceeded(.|\n)*log tail"),
        ({"tamper": True}, PolicyViolation, "is not the engine the job built"),
    ],
    ids=["parity", "compute-capability", "job-failed", "tampered-plan"],
)
def test_a_bad_build_is_not_registered(cluster, node_kwargs, error, match):
    env, kube, _ = cluster
    with GpuNode(kube, env, **node_kwargs), pytest.raises(error, match=match):
        optimize("digits", "1", env=env, target="tensorrt", precision="fp16",
                 kube_api_client=kube, in_process=False, timeout=60)
    assert [v.version for v in registry.list_versions("digits")] == ["1"]
