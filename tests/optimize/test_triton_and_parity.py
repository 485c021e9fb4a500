"""Triton repositories and the parity gate on the real sample model (CPU, ONNX Runtime)."""

from __future__ import annotations

import numpy as np
import pytest

from blueprints import load_environment
from control_plane.errors import MlctlError
from control_plane.optimize import parity, triton
from control_plane.optimize.job import BuildRequest, build_pool, render_build
from control_plane.optimize.onnx_io import read_interface
from control_plane.optimize.settings import OptimizeSettings, load_settings
from control_plane.samples.digits import build_sample_model
from control_plane.settings import BLUEPRINTS_DIR

DIGEST = "sha256:" + "ab" * 32


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return build_sample_model(tmp_path_factory.mktemp("sample") / "digits", variant="v1")


def test_onnx_repository_config_matches_the_model(sample, tmp_path):
    interface = read_interface(sample.model_file)
    repo = triton.write_repository(
        tmp_path / "repo", "digits", interface, target="onnx", model_files={"any": sample.model_file}
    )
    config = triton.parse_config(repo.config_path.read_text())
    assert config.platform == "onnxruntime_onnx"
    assert config.max_batch_size == 64
    assert [i.name for i in config.input] == [t.name for t in interface.inputs] == ["input"]
    assert list(config.input[0].dims) == [64]
    assert [o.name for o in config.output] == [t.name for t in interface.outputs]
    assert "probabilities" in [o.name for o in config.output]
    assert config.instance_group[0].kind == config.instance_group[0].KIND_GPU
    assert config.HasField("dynamic_batching")
    assert (tmp_path / "repo" / "digits" / "1" / "model.onnx").read_bytes() == sample.model_file.read_bytes()


def test_tensorrt_repository_with_several_compute_capabilities(sample, tmp_path):
    plans = {}
    for cc in ("8.6", "9.0"):
        p = tmp_path / f"plan-{cc}"
        p.write_bytes(b"engine bytes for " + cc.encode())
        plans[cc] = p
    interface = read_interface(sample.model_file)
    repo = triton.write_repository(tmp_path / "repo", "digits", interface, target="tensorrt", model_files=plans)
    config = triton.parse_config(repo.config_path.read_text())
    assert config.platform == "tensorrt_plan"
    assert dict(config.cc_model_filenames) == {"8.6": "model.sm86.plan", "9.0": "model.sm90.plan"}
    assert sorted(p.name for p in repo.model_files) == ["model.sm86.plan", "model.sm90.plan"]


def test_parse_config_rejects_unknown_fields():
    with pytest.raises(Exception, match="no_such_field"):
        triton.parse_config('name: "x" no_such_field: 1')


def test_parity_passes_identical_and_fails_a_degraded_model(sample):
    x, _ = sample.eval_set()
    run = parity.onnx_runner(str(sample.model_file))
    same = parity.run_parity(run, run, x, precision="fp32")
    assert same.passed and same.max_abs_error == 0.0 and same.top1_agreement == 1.0

    rng = np.random.default_rng(0)

    def noisy(batch):
        out = run(batch)
        return out + rng.normal(0, 0.2, out.shape)

    bad = parity.run_parity(run, noisy, x, precision="fp16")
    assert not bad.passed
    assert bad.max_abs_error > parity.TOLERANCES["fp16"][0]
    assert any("exceeds" in r for r in bad.reasons)
    assert any("top-1 agreement" in r for r in bad.reasons)


def test_fp16_rounding_is_within_fp16_tolerance(sample):
    x, _ = sample.eval_set()
    run = parity.onnx_runner(str(sample.model_file))
    report = parity.run_parity(run, lambda b: run(b).astype(np.float16).astype(np.float32), x, precision="fp16")
    assert report.passed, report.reasons
    assert report.max_abs_error > 0


def _settings(**kw):
    base = {
        "tensorrt_image": f"nvcr.io/nvidia/tensorrt:24.08-py3@{DIGEST}",
        "tools_image": f"123456789012.dkr.ecr.me-central-1.amazonaws.com/mlctl-tools:0.1@{DIGEST}",
        "role_arn": "arn:aws:iam::123456789012:role/tensorrt-builder",
    }
    return OptimizeSettings(**{**base, **kw})


def test_settings_refuse_an_image_without_digest(monkeypatch):
    monkeypatch.setenv("MLCTL_TENSORRT_IMAGE", "nvcr.io/nvidia/tensorrt:24.08-py3")
    monkeypatch.setenv("MLCTL_TOOLS_IMAGE", f"registry.local/tools@{DIGEST}")
    with pytest.raises(MlctlError, match="not pinned by digest"):
        load_settings()


def test_build_job_runs_on_the_build_pool_without_public_egress(sample):
    env = load_environment(BLUEPRINTS_DIR / "uae-prod-aws.yaml")
    req = BuildRequest(
        build_id="abc123",
        model_name="digits",
        model_version="1",
        source_uri="s3://uae-prod-model-artifacts/builds/abc123/input",
        output_prefix="s3://uae-prod-model-artifacts/builds/abc123/output",
        precision="fp16",
        interface=read_interface(sample.model_file),
    )
    sa, cm, netpol, job = render_build(req, env, _settings())
    pod = job["spec"]["template"]["spec"]
    assert build_pool(env).name == "gpu-build"
    assert pod["nodeSelector"]["eks.amazonaws.com/nodegroup"] == "gpu-build"
    assert {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"} in pod["tolerations"]
    build = next(c for c in pod["initContainers"] if c["name"] == "build")
    assert build["image"].endswith(DIGEST) and build["resources"]["limits"]["nvidia.com/gpu"] == "1"
    env_vars = {e["name"]: e["value"] for e in build["env"]}
    assert env_vars["PRECISION"] == "fp16"
    assert env_vars["SHAPES_MAX"] == "input:64x64" and env_vars["SHAPES_MIN"] == "input:1x64"
    assert [c["name"] for c in pod["initContainers"]] == ["fetch", "build"]
    assert all(c["securityContext"]["runAsNonRoot"] for c in [*pod["initContainers"], *pod["containers"]])
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].endswith("role/tensorrt-builder")
    egress = netpol["spec"]["egress"]
    cidrs = [peer["ipBlock"]["cidr"] for rule in egress for peer in rule.get("to", [])]
    assert cidrs == [str(env.network.vpc_cidr)], "egress only into the VPC (private endpoints)"
    assert "trtexec" in cm["data"]["build.sh"] and "polygraphy" in cm["data"]["build.sh"]


def test_no_gpu_pool_is_a_clear_error(sample):
    env = load_environment(BLUEPRINTS_DIR / "uae-local.yaml")
    no_gpu = env.model_copy(update={"cluster": env.cluster.model_copy(update={"gpu_pools": []})})
    with pytest.raises(MlctlError, match="no GPU pool"):
        build_pool(no_gpu)
