"""The cluster form: KFP IR for the environment's Kubeflow Pipelines, checked structurally and
against KFP's own IR schema (the PipelineSpec / PlatformSpec protobuf messages kfp-pipeline-spec ships)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from control_plane.errors import MlctlError

ECR_IMAGE = "123456789012.dkr.ecr.me-central-1.amazonaws.com/mlctl-pipeline-python@sha256:" + "ab" * 32
ACR_IMAGE = "uaemlops.azurecr.io/mlctl-pipeline-python@sha256:" + "cd" * 32


def _compile(env: str, image: str, tmp_path: Path, **changes: object) -> tuple[list[dict], object]:
    from control_plane.pipelines import compile_pipeline, load_config

    cfg = load_config("digits", env=env).model_copy(update=changes)
    path = compile_pipeline(cfg, image=image, out=tmp_path / f"{env}.yaml")
    docs = list(yaml.safe_load_all(path.read_text()))
    return docs, cfg


def _proto_check(docs: list[dict]) -> None:
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    # ParseDict refuses unknown fields and wrong types: the IR conforms to KFP's schema.
    json_format.ParseDict(docs[0], pipeline_spec_pb2.PipelineSpec())
    json_format.ParseDict(docs[1], pipeline_spec_pb2.PlatformSpec())


@pytest.mark.parametrize(("env", "image", "selector_key", "pool"), [
    ("uae-prod-aws", ECR_IMAGE, "eks.amazonaws.com/nodegroup", "gpu-build"),
    ("uae-prod-azure", ACR_IMAGE, "kubernetes.azure.com/agentpool", "gpubuild"),
])
def test_ir_carries_the_training_pool_gpu_and_pinned_images(env, image, selector_key, pool, tmp_path):
    from blueprints import load_environment
    from control_plane.pipelines.definition import EGRESS_LABEL, training_pool
    from control_plane.settings import BLUEPRINTS_DIR

    docs, cfg = _compile(env, image, tmp_path)
    assert len(docs) == 2, "the IR and its Kubernetes platform spec"
    _proto_check(docs)
    spec, platform = docs
    executors = spec["deploymentSpec"]["executors"]
    assert set(executors) == {f"exec-{s}-op" for s in ("fetch", "data-tests", "train", "select", "evaluate",
                                                        "register")}
    for name, ex in executors.items():
        c = ex["container"]
        assert c["image"] == image, name  # pinned by digest, from the environment's registry
        command = " ".join(c.get("command", []) + c.get("args", []))
        assert "pip install" not in command, f"{name} would reach a package index at run time"
        if name == "exec-train-op":
            acc = c["resources"]["accelerator"]
            assert acc["resourceType"] == "nvidia.com/gpu" and int(acc["resourceCount"]) == cfg.gpus
        else:
            assert "accelerator" not in c.get("resources", {}), f"{name} must not hold a GPU"

    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    env_model = load_environment(BLUEPRINTS_DIR / f"{env}.yaml")
    chosen = training_pool(env_model)
    assert chosen is not None and chosen.name == pool
    train = k8s["exec-train-op"]
    assert train["nodeSelector"]["labels"] == {selector_key: pool, **chosen.labels}
    assert {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"} in train["tolerations"]
    for name in executors:
        assert k8s[name]["podMetadata"]["labels"][EGRESS_LABEL[0]] == EGRESS_LABEL[1], name
        if name != "exec-train-op":
            assert "nodeSelector" not in k8s[name] and "tolerations" not in k8s[name]


def test_grid_compiles_to_a_parallel_loop(tmp_path):
    docs, _cfg = _compile("uae-prod-aws", ECR_IMAGE, tmp_path, parallelism=3)
    loops = [t for t in docs[0]["root"]["dag"]["tasks"].values() if "parameterIterator" in t]
    assert len(loops) == 1
    loop = loops[0]
    assert loop["iteratorPolicy"]["parallelismLimit"] == 3
    assert loop["parameterIterator"]["items"]["inputParameter"].endswith("grid")
    body = docs[0]["components"][loop["componentRef"]["name"]]["dag"]["tasks"]
    assert list(body) == ["train-op"]
    # the selection step collects every candidate's model from the loop
    select = docs[0]["root"]["dag"]["tasks"]["select-op"]
    assert select["inputs"]["artifacts"]["models"]["taskOutputArtifact"]["producerTask"] == loop["taskInfo"]["name"]


def test_ir_loads_back_as_a_kfp_component(tmp_path):
    from kfp import components

    _docs, _ = _compile("uae-prod-aws", ECR_IMAGE, tmp_path)
    loaded = components.load_component_from_file(str(tmp_path / "uae-prod-aws.yaml"))
    assert set(loaded.component_spec.inputs) == {"dataset", "features", "context", "grid"}


@pytest.mark.parametrize(("image", "why"), [
    ("python:3.11", "not pinned by digest"),
    ("docker.io/library/python@sha256:" + "ab" * 32, "not in uae-prod-aws's registry"),
    ("123456789012.dkr.ecr.eu-west-1.amazonaws.com/x@sha256:" + "ab" * 32, "not in uae-prod-aws's registry"),
])
def test_compile_refuses_unpinned_or_foreign_images(image, why, tmp_path):
    with pytest.raises(MlctlError) as exc:
        _compile("uae-prod-aws", image, tmp_path)
    assert why in exc.value.message and exc.value.hint


def test_compile_cli_writes_the_ir(tmp_path, capsys):
    from tests.registry.conftest import run_cli

    out = tmp_path / "ir.yaml"
    code, stdout, err = run_cli("pipeline", "compile", "digits", "--env", "uae-prod-aws", "--image",
                                ECR_IMAGE, "--out", str(out), "--output", "json")
    assert code == 0, err
    assert out.is_file() and '"path"' in stdout
    code, _, err = run_cli("pipeline", "compile", "digits", "--env", "uae-prod-aws", "--out", str(out))
    assert code == 2 and "no step image" in err and "fix:" in err
