"""Every rendered InferenceService verifies its model inside the pod: our verifier is the predictor's
``storage-initializer`` (KServe then injects none, so nothing else writes the model volume), it runs
non-root on a read-only root filesystem from an image pinned by digest, and the model server mounts
what it verified read-only. Rendered objects are validated against the real KServe CRD, and applied
to the API emulator, which validates them server-side and keeps every field (nothing is pruned)."""

from __future__ import annotations

import pytest

from blueprints.loader import load_environment
from blueprints.schema import Environment
from control_plane.drivers.base import Deployment, Resources
from control_plane.errors import PolicyViolation
from control_plane.kserve import crds, verification
from control_plane.kserve.driver import KubernetesDriver
from control_plane.kserve.model import ServedModel, ServingOptions
from control_plane.kserve.render import render_inference_service
from control_plane.settings import BLUEPRINTS_DIR
from tests.conftest import TEST_VERIFIER_IMAGE
from tests.kserve.conftest import ISVC

DIGEST = "sha256:" + "5" * 64
URI = "s3://uae-prod-model-artifacts/models/fraud-scoring/7/" + "5" * 64


@pytest.fixture(scope="module")
def prod() -> Environment:
    return load_environment(BLUEPRINTS_DIR / "uae-prod-aws.yaml")


def served(**kw: object) -> ServedModel:
    base: dict[str, object] = {
        "name": "fraud-scoring", "version": "7", "digest": DIGEST, "release_id": "rel-7", "format": "onnx",
        "storage_uri": URI,
    }
    return ServedModel(**{**base, **kw})  # type: ignore[arg-type]


def _container_mounts(container: dict) -> dict[str, dict]:
    return {m["name"]: m for m in container.get("volumeMounts", [])}


@pytest.mark.parametrize("mode", ["Standard", "Knative"])
@pytest.mark.parametrize("read_only", [True, False])
def test_the_verifier_is_the_storage_initializer_and_the_server_mounts_its_output_read_only(
    prod, crds_available, mode, read_only
):
    obj = render_inference_service(
        served(), prod, service="fraud", colour="blue",
        options=ServingOptions(mode=mode, read_only_root_fs=read_only),
    )
    assert crds.validation_errors(obj) == []
    predictor = obj["spec"]["predictor"]
    # The only init container, under the name KServe's injector checks before injecting its own
    # (CommonStorageInitialization: "Don't inject if InitContainer already injected"); a differently
    # named one would be ordered *before* KServe's download and check nothing.
    [init] = predictor["initContainers"]
    assert init["name"] == "storage-initializer"
    assert init["image"] == TEST_VERIFIER_IMAGE and "@sha256:" in init["image"]
    assert init["command"] == ["python", "-m", "control_plane.signing.verify_pod"]
    args = init["args"]
    assert args[args.index("--storage-uri") + 1] == URI  # the same URI the predictor names
    assert predictor["model"]["storageUri"] == URI
    assert args[args.index("--expected-digest") + 1] == DIGEST  # the released version, exactly
    assert args[args.index("--model-dir") + 1] == "/mnt/models"
    assert args[args.index("--trusted-keys") + 1] == verification.KEYS_MOUNT
    assert {"name": "AWS_REGION", "value": "me-central-1"} in init["env"]
    sc = init["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] != 0
    assert sc["readOnlyRootFilesystem"] is True  # always, whatever the model server's setting
    assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert init["terminationMessagePolicy"] == "FallbackToLogsOnError"

    volumes = {v["name"]: v for v in predictor["volumes"]}
    assert volumes["kserve-provision-location"] == {"name": "kserve-provision-location", "emptyDir": {}}
    assert volumes[verification.KEYS_VOLUME]["configMap"]["name"] == "mlctl-trusted-model-keys"
    assert ("tmp" in volumes) is read_only
    init_mounts = _container_mounts(init)
    assert init_mounts["kserve-provision-location"]["mountPath"] == "/mnt/models"
    assert not init_mounts["kserve-provision-location"].get("readOnly")  # it writes the download
    assert init_mounts[verification.KEYS_VOLUME]["readOnly"] is True
    server_mounts = _container_mounts(predictor["model"])
    assert server_mounts["kserve-provision-location"] == {
        "name": "kserve-provision-location", "mountPath": "/mnt/models", "readOnly": True}
    # Every mount names a declared volume (the API server would refuse the pod otherwise).
    assert set(init_mounts) | set(server_mounts) <= set(volumes)


def test_trusted_keys_configmap_is_configurable(prod, monkeypatch):
    monkeypatch.setenv("MLCTL_TRUSTED_KEYS_CONFIGMAP", "uae-prod-signing-keys")
    obj = render_inference_service(served(), prod, service="fraud", colour="green")
    volumes = {v["name"]: v for v in obj["spec"]["predictor"]["volumes"]}
    assert volumes[verification.KEYS_VOLUME]["configMap"] == {"name": "uae-prod-signing-keys", "defaultMode": 0o444}


@pytest.mark.parametrize(
    ("image", "says"),
    [
        (None, "no model verifier image is configured"),
        ("123456789012.dkr.ecr.me-central-1.amazonaws.com/mlctl-tools:0.1.0", "not pinned by digest"),
        ("mlctl-tools@sha256:abc", "not pinned by digest"),
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com/mlctl-tools@sha256:" + "a" * 64, "outside me-central-1"),
    ],
)
def test_no_isvc_without_a_pinned_in_region_verifier_image(prod, monkeypatch, image, says):
    monkeypatch.delenv("MLCTL_VERIFIER_IMAGE", raising=False)
    monkeypatch.delenv("MLCTL_TOOLS_IMAGE", raising=False)
    if image is not None:
        monkeypatch.setenv("MLCTL_VERIFIER_IMAGE", image)
    with pytest.raises(PolicyViolation) as exc:
        render_inference_service(served(), prod, service="fraud", colour="blue")
    assert says in exc.value.message
    assert exc.value.hint  # says how to fix it (which variable, or where to push the image)


def test_the_tools_image_serves_as_verifier_by_default(prod, monkeypatch):
    tools = "123456789012.dkr.ecr.me-central-1.amazonaws.com/mlctl-tools:0.1.0@sha256:" + "c" * 64
    monkeypatch.delenv("MLCTL_VERIFIER_IMAGE", raising=False)
    monkeypatch.setenv("MLCTL_TOOLS_IMAGE", tools)
    obj = render_inference_service(served(), prod, service="fraud", colour="blue")
    assert obj["spec"]["predictor"]["initContainers"][0]["image"] == tools


def test_applied_to_the_api_emulator_the_verifier_survives_server_side_validation(
    prod, kubeconfig, namespace, k8s_api, kserve_controller
):
    driver = KubernetesDriver(prod, options=ServingOptions(namespace=namespace), kubeconfig=kubeconfig)
    dep = Deployment(
        service="fraud", model_name="fraud-scoring", model_version="7", digest=DIGEST, release_id="rel-7",
        storage_uri=URI, resources=Resources(cpu="2", memory="8Gi", gpus=1), environment="uae-prod-aws",
    )
    driver.apply("fraud", "blue", dep)
    stored = k8s_api.object(ISVC, namespace, "fraud-blue")
    assert stored is not None
    predictor = stored["spec"]["predictor"]
    assert [c["name"] for c in predictor["initContainers"]] == ["storage-initializer"]
    assert predictor["initContainers"][0]["args"] == render_inference_service(
        served(), prod, service="fraud", colour="blue", options=ServingOptions(namespace=namespace)
    )["spec"]["predictor"]["initContainers"][0]["args"]
    assert {"name": "kserve-provision-location", "mountPath": "/mnt/models", "readOnly": True} in predictor[
        "model"]["volumeMounts"]

    # The pod's verifier refuses a tampered file: KServe copies the storage-initializer's termination
    # message into lastFailureInfo, and the driver reports a terminal failure naming the file.
    message = ("model verification failed: models: 'weights/part-1.bin' was changed: sha256 0f3c… does not "
               "match the signed 9a1b…")
    kserve_controller.mark_failed("fraud-blue", message)
    ready = driver.ready("fraud", "blue")
    assert ready.failed and not ready.ready
    assert "weights/part-1.bin" in ready.reason
