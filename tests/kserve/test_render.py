"""InferenceService and HTTPRoute rendering, validated against the real CRD schemas."""

from __future__ import annotations

import copy

import pytest

from blueprints.loader import load_environment
from blueprints.schema import Environment
from control_plane.errors import BlueprintError, MlctlError, PolicyViolation
from control_plane.kserve import crds, naming
from control_plane.kserve.httproute import COLOUR_HEADER, render_http_route, weights_of
from control_plane.kserve.model import DeploymentMode, ServedModel, ServingOptions, parse_mode
from control_plane.kserve.render import render_inference_service
from control_plane.settings import BLUEPRINTS_DIR

DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.fixture(scope="module")
def prod() -> Environment:
    return load_environment(BLUEPRINTS_DIR / "uae-prod-aws.yaml")


def model(**kw: object) -> ServedModel:
    base: dict[str, object] = {
        "name": "fraud-scoring",
        "version": "7",
        "digest": DIGEST,
        "release_id": "rel-20261127-0001",
        "format": "onnx",
        "storage_uri": "s3://uae-prod-model-artifacts/fraud-scoring/7/",
    }
    base.update(kw)
    return ServedModel(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", ["onnx", "tensorrt"])
@pytest.mark.parametrize("mode", ["Standard", "Knative"])
def test_rendered_isvc_validates_against_the_kserve_crd(prod, crds_available, fmt, mode):
    opts = ServingOptions(mode=mode)
    obj = render_inference_service(
        model(format=fmt),
        prod,
        service="fraud",
        colour="green",
        options=opts,
        canary_traffic_percent=10 if mode == "Knative" else None,
    )
    assert crds.validation_errors(obj) == []
    assert crds.validate(obj) is obj
    meta, predictor = obj["metadata"], obj["spec"]["predictor"]
    # the deployment mode is always explicit, under KServe 0.15+ names
    assert meta["annotations"]["serving.kserve.io/deploymentMode"] == mode
    assert predictor["model"]["modelFormat"] == {"name": fmt}
    assert predictor["model"]["runtime"] == "kserve-tritonserver"
    assert predictor["model"]["protocolVersion"] == "v2"
    if mode == "Knative":
        assert meta["name"] == "fraud"
        assert predictor["canaryTrafficPercent"] == 10
        assert meta["annotations"]["serving.kserve.io/enable-tag-routing"] == "true"
    else:
        assert meta["name"] == "fraud-green"
        assert meta["labels"][naming.LABEL_COLOUR] == "green"
        assert "canaryTrafficPercent" not in predictor


def test_gpu_pool_placement_resources_and_security(prod):
    obj = render_inference_service(model(), prod, service="fraud", colour="blue")
    p = obj["spec"]["predictor"]
    pool = next(pl for pl in prod.cluster.gpu_pools if pl.name == "gpu-inference")
    assert p["nodeSelector"] == pool.labels
    assert {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"} in p[
        "tolerations"
    ]
    res = p["model"]["resources"]
    assert res["limits"]["nvidia.com/gpu"] == "1" and res["requests"]["nvidia.com/gpu"] == "1"
    sc = p["model"]["securityContext"]
    assert sc["runAsNonRoot"] and not sc["allowPrivilegeEscalation"] and not sc["privileged"]
    assert sc["readOnlyRootFilesystem"] and sc["capabilities"] == {"drop": ["ALL"]}
    assert {"name": "tmp", "mountPath": "/tmp"} in p["model"]["volumeMounts"]
    assert (
        p["securityContext"]["runAsNonRoot"]
        and p["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    )
    assert p["serviceAccountName"] == "mlops-model-server"
    assert p["automountServiceAccountToken"] is False
    assert p["minReplicas"] >= 1


def test_named_pool_and_cpu_only(prod):
    obj = render_inference_service(
        model(), prod, service="fraud", colour="blue", options=ServingOptions(gpu_pool="gpu-build")
    )
    assert obj["spec"]["predictor"]["nodeSelector"]["workload"] == "tensorrt-build"
    cpu = render_inference_service(
        model(), prod, service="fraud", colour="blue", options=ServingOptions(gpus=0)
    )
    assert "nodeSelector" not in cpu["spec"]["predictor"] and "tolerations" not in cpu["spec"]["predictor"]
    assert "nvidia.com/gpu" not in cpu["spec"]["predictor"]["model"]["resources"]["limits"]
    with pytest.raises(BlueprintError, match="no GPU pool named 'nope'") as exc:
        render_inference_service(
            model(), prod, service="f", colour="blue", options=ServingOptions(gpu_pool="nope")
        )
    assert "gpu-inference" in (exc.value.hint or "")


def test_labels_are_label_safe_and_annotations_exact(prod, crds_available):
    long_name = "Credit Risk/Scoring model (retail) " * 3
    obj = render_inference_service(
        model(name=long_name, version="2026.11.27+build.5"), prod, service="fraud", colour="blue"
    )
    labels, ann = obj["metadata"]["labels"], obj["metadata"]["annotations"]
    for value in labels.values():
        assert len(value) <= 63
    assert labels[naming.LABEL_DIGEST] == DIGEST.removeprefix("sha256:")[:63]
    assert labels[naming.LABEL_RELEASE] == "rel-20261127-0001"
    assert ann[naming.ANNOTATION_DIGEST] == DIGEST
    assert ann[naming.ANNOTATION_MODEL] == long_name
    assert ann[naming.ANNOTATION_VERSION] == "2026.11.27+build.5"
    crds.validate(obj)  # includes the label syntax checks the API server applies
    # distinct long names stay distinct after shortening
    assert naming.label_value("a" * 80) != naming.label_value("a" * 81)


@pytest.mark.parametrize(
    "uri",
    [
        "s3://somebody-elses-bucket/fraud/7/",
        "s3://uae-prod-model-artifacts-eu/fraud/7/",  # a prefix of the name is not the bucket
        "s3://uae-prod-model-artifacts/",
        "s3://uae-prod-model-artifacts/fraud/../../x",
        "gs://uae-prod-model-artifacts/fraud/7/",
        "https://uae-prod-model-artifacts.s3.eu-west-1.amazonaws.com/fraud/7/",
    ],
)
def test_storage_uri_outside_the_registry_is_refused(prod, uri):
    with pytest.raises(
        PolicyViolation, match="outside the model registry of environment 'uae-prod-aws'"
    ) as exc:
        render_inference_service(model(storage_uri=uri), prod, service="fraud", colour="blue")
    assert "s3://uae-prod-model-artifacts/" in (exc.value.hint or "")


def test_bad_inputs_give_errors_with_fixes(prod):
    with pytest.raises(MlctlError, match="sha256") as exc:
        model(digest="md5:abc")
    assert exc.value.hint
    with pytest.raises(MlctlError, match="cannot name a KServe InferenceService"):
        render_inference_service(model(), prod, service="Fraud_Scoring", colour="blue")
    with pytest.raises(PolicyViolation, match="needs a colour"):
        render_inference_service(model(), prod, service="fraud")
    with pytest.raises(PolicyViolation, match="Knative mode only"):
        render_inference_service(model(), prod, service="fraud", colour="blue", canary_traffic_percent=5)
    with pytest.raises(MlctlError, match="unknown KServe deployment mode"):
        ServingOptions(mode="Sideways")  # type: ignore[arg-type]
    assert parse_mode("RawDeployment") is DeploymentMode.standard
    assert parse_mode("Serverless") is DeploymentMode.knative
    with pytest.raises(MlctlError, match="replicas"):
        ServingOptions(min_replicas=0)


def test_crd_validation_catches_typos_and_types(prod, crds_available):
    obj = render_inference_service(model(), prod, service="fraud", colour="blue")
    bad = copy.deepcopy(obj)
    bad["spec"]["predictor"]["model"]["storageURI"] = bad["spec"]["predictor"]["model"].pop("storageUri")
    bad["spec"]["predictor"]["minReplicas"] = "one"
    bad["spec"]["predictor"]["model"]["resources"]["limits"]["cpu"] = "lots"
    bad["metadata"]["labels"]["mlctl.io/model"] = "not a label value!"
    errors = crds.validation_errors(bad)
    joined = "\n".join(errors)
    assert "storageURI" in joined
    assert "spec.predictor.minReplicas" in joined
    assert "spec.predictor.model.resources.limits.cpu" in joined
    assert "metadata.labels.mlctl.io/model" in joined
    with pytest.raises(MlctlError, match="does not match its CRD schema") as exc:
        crds.validate(bad)
    assert "fix" not in str(exc.value.message) and exc.value.hint


def test_missing_crd_folder_is_a_clear_error(prod, monkeypatch, tmp_path):
    monkeypatch.setenv("KSERVE_CRDS_DIR", str(tmp_path / "nowhere"))
    obj = render_inference_service(model(), prod, service="fraud", colour="blue")
    with pytest.raises(crds.CrdsMissing, match="missing") as exc:
        crds.validate(obj)
    assert "KSERVE_CRDS_DIR" in (exc.value.hint or "")


def test_http_route_validates_and_reads_back(crds_available):
    opts = ServingOptions(hostnames=("fraud.models.bank.ae",))
    route = render_http_route(service="fraud", weights={"blue": 90, "green": 10}, options=opts)
    assert crds.validation_errors(route) == []
    assert {str(c): w for c, w in weights_of(route, "fraud").items()} == {"blue": 90, "green": 10}
    rules = route["spec"]["rules"]
    weighted = rules[-1]["backendRefs"]
    assert [(b["name"], b["port"], b["weight"]) for b in weighted] == [
        ("fraud-blue-predictor", 80, 90),
        ("fraud-green-predictor", 80, 10),
    ]
    # a header rule per colour reaches a colour directly (smoke tests before any traffic)
    headers = {r["matches"][0]["headers"][0]["value"]: r["backendRefs"][0]["name"] for r in rules[:-1]}
    assert headers == {"blue": "fraud-blue-predictor", "green": "fraud-green-predictor"}
    assert rules[0]["matches"][0]["headers"][0]["name"] == COLOUR_HEADER
    assert route["spec"]["parentRefs"][0] == {
        "group": "gateway.networking.k8s.io",
        "kind": "Gateway",
        "name": "kserve-ingress-gateway",
        "namespace": "kserve",
    }
    assert route["spec"]["hostnames"] == ["fraud.models.bank.ae"]
    only_blue = render_http_route(service="fraud", weights={"blue": 100})
    assert only_blue["spec"]["rules"][-1]["backendRefs"][1]["weight"] == 0
    with pytest.raises(MlctlError, match="sum to 100"):
        render_http_route(service="fraud", weights={"blue": 90, "green": 20})
