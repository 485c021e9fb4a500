"""The Kubernetes driver against the API emulator (real CRDs, server-side schema validation), with a
fixture playing the KServe controller. The official client talks HTTP through a kubeconfig."""

from __future__ import annotations

import pytest

from blueprints.loader import load_environment
from control_plane.drivers.base import Deployment, Driver, Resources
from control_plane.errors import Conflict, InfraError, MlctlError, PolicyViolation, ToolMissing
from control_plane.kserve import naming
from control_plane.kserve.driver import KubernetesDriver
from control_plane.kserve.model import ServingOptions
from control_plane.settings import BLUEPRINTS_DIR
from tests.kserve.conftest import ISVC, ROUTE

DIGEST_1 = "sha256:" + "1" * 64
DIGEST_2 = "sha256:" + "2" * 64


@pytest.fixture(scope="module")
def prod():
    return load_environment(BLUEPRINTS_DIR / "uae-prod-aws.yaml")


def deployment(version: str, digest: str, release: str, **kw) -> Deployment:
    fields = {
        "service": "fraud",
        "model_name": "fraud-scoring",
        "model_version": version,
        "digest": digest,
        "release_id": release,
        "storage_uri": f"s3://uae-prod-model-artifacts/fraud-scoring/{version}/",
        "resources": Resources(cpu="2", memory="8Gi", gpus=1),
        "environment": "uae-prod-aws",
    }
    return Deployment(**{**fields, **kw})


V1 = deployment("1", DIGEST_1, "rel-1")
V2 = deployment("2", DIGEST_2, "rel-2")


@pytest.fixture()
def standard(prod, kubeconfig, namespace):
    return KubernetesDriver(
        prod,
        options=ServingOptions(namespace=namespace, hostnames=("fraud.models.bank.ae",)),
        kubeconfig=kubeconfig,
        prometheus_url="http://prometheus.test:9090",
    )


@pytest.fixture()
def knative(prod, kubeconfig, namespace):
    return KubernetesDriver(
        prod, options=ServingOptions(namespace=namespace, mode="Knative"), kubeconfig=kubeconfig
    )


def test_implements_the_driver_port(standard):
    assert isinstance(standard, Driver)
    assert standard.name == "kubernetes"


def test_create_not_ready_then_controller_marks_ready(standard, kserve_controller, k8s_api, namespace):
    standard.apply("fraud", "blue", V1)
    stored = k8s_api.object(ISVC, namespace, "fraud-blue")
    assert stored is not None
    assert stored["metadata"]["labels"][naming.LABEL_RELEASE] == "rel-1"
    assert stored["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    assert stored["spec"]["predictor"]["model"]["storageUri"] == V1.storage_uri
    assert stored["metadata"]["generation"] == 1

    r = standard.ready("fraud", "blue")
    assert not r.ready and not r.failed and "generation 1" in r.reason  # KServe has not looked at it yet

    kserve_controller.mark_loading("fraud-blue")
    r = standard.ready("fraud", "blue")
    assert not r.ready and not r.failed and "condition Ready is not True (model is loading)" in r.reason

    kserve_controller.mark_ready("fraud-blue")
    r = standard.ready("fraud", "blue")
    assert r.ready, r.reason
    assert standard.deployed("fraud") == {"blue": V1}
    # applying the same thing again changes nothing (idempotent for resume)
    before = k8s_api.object(ISVC, namespace, "fraud-blue")
    standard.apply("fraud", "blue", V1)
    assert (
        k8s_api.object(ISVC, namespace, "fraud-blue")["metadata"]["resourceVersion"]
        == (before["metadata"]["resourceVersion"])
    )


def test_stale_generation_is_not_ready(standard, kserve_controller, k8s_api, namespace):
    standard.apply("fraud", "green", V1)
    kserve_controller.mark_ready("fraud-green")
    assert standard.ready("fraud", "green").ready
    # a new spec (new model) bumps the generation; the old Ready status no longer counts
    standard.apply("fraud", "green", V2)
    obj = k8s_api.object(ISVC, namespace, "fraud-green")
    assert obj["metadata"]["generation"] == 2
    assert obj["status"]["observedGeneration"] == 1  # the old status is still there ...
    r = standard.ready("fraud", "green")
    assert not r.ready and "generation 2" in r.reason  # ... and is not believed
    kserve_controller.mark_ready("fraud-green")
    assert standard.ready("fraud", "green").ready
    assert standard.deployed("fraud")["green"] == V2


def test_failed_model_load_is_terminal(standard, kserve_controller):
    standard.apply("fraud", "green", V2)
    kserve_controller.mark_failed("fraud-green", "failed to load model: bad ONNX file")
    r = standard.ready("fraud", "green")
    assert not r.ready and r.failed and "bad ONNX file" in r.reason
    # re-applying a fixed model: the old failure belongs to the old generation
    standard.apply("fraud", "green", V1)
    r = standard.ready("fraud", "green")
    assert not r.ready and not r.failed and "generation 2" in r.reason
    kserve_controller.mark_ready("fraud-green")
    assert standard.ready("fraud", "green").ready
    missing = standard.ready("fraud", "blue")
    assert not missing.ready and missing.failed and "does not exist" in missing.reason


def test_httproute_weights_switch_and_delete(standard, kserve_controller, k8s_api, namespace):
    assert standard.traffic("fraud") == {}
    standard.apply("fraud", "blue", V1)
    kserve_controller.mark_ready("fraud-blue")
    with pytest.raises(Conflict, match="green: it is not deployed"):
        standard.set_traffic("fraud", {"blue": 50, "green": 50})

    standard.set_traffic("fraud", {"blue": 100})
    route = k8s_api.object(ROUTE, namespace, "fraud")
    assert route is not None and route["metadata"]["generation"] == 1
    assert standard.traffic("fraud") == {"blue": 100, "green": 0}

    standard.apply("fraud", "green", V2)
    kserve_controller.mark_ready("fraud-green")
    assert standard.traffic("fraud") == {"blue": 100, "green": 0}  # apply never moves traffic

    standard.set_traffic("fraud", {"blue": 90, "green": 10})
    weighted = k8s_api.object(ROUTE, namespace, "fraud")["spec"]["rules"][-1]["backendRefs"]
    assert {b["name"]: b["weight"] for b in weighted} == {
        "fraud-blue-predictor": 90,
        "fraud-green-predictor": 10,
    }
    standard.set_traffic("fraud", {"green": 100})
    assert standard.traffic("fraud") == {"blue": 0, "green": 100}
    rv = k8s_api.object(ROUTE, namespace, "fraud")["metadata"]["resourceVersion"]
    standard.set_traffic("fraud", {"blue": 0, "green": 100})  # already in force: no write
    assert k8s_api.object(ROUTE, namespace, "fraud")["metadata"]["resourceVersion"] == rv

    # a colour with traffic can be neither replaced nor deleted
    with pytest.raises(Conflict, match="still receives traffic"):
        standard.delete("fraud", "green")
    with pytest.raises(Conflict, match="still receives traffic"):
        standard.apply("fraud", "green", V1)

    # rollback is one route write while blue is up
    standard.set_traffic("fraud", {"blue": 100})
    assert standard.traffic("fraud") == {"blue": 100, "green": 0}
    standard.delete("fraud", "green")
    assert k8s_api.object(ISVC, namespace, "fraud-green") is None
    standard.delete("fraud", "green")  # idempotent
    assert set(standard.deployed("fraud")) == {"blue"}

    standard.set_traffic("fraud", {"green": 0, "blue": 100})
    with pytest.raises(Conflict):
        standard.delete("fraud", "blue")


def test_endpoints_and_metrics_source(standard, kserve_controller, namespace):
    standard.apply("fraud", "blue", V1)
    assert standard.endpoint("fraud", "blue") == f"http://fraud-blue-predictor.{namespace}.svc.cluster.local"
    kserve_controller.mark_ready("fraud-blue")
    assert standard.endpoint("fraud", "blue") == f"http://fraud-blue-{namespace}.example.ae"
    assert standard.endpoint("fraud") == "https://fraud.models.bank.ae"
    ms = standard.metrics_source("fraud", "blue")
    assert ms.kind == "prometheus-api" and ms.url == "http://prometheus.test:9090"
    assert ms.selector == f'namespace="{namespace}",pod=~"fraud-blue-predictor-.*"'


def test_knative_canary_through_canary_traffic_percent(knative, kserve_controller, k8s_api, namespace):
    knative.apply("fraud", "blue", V1)
    obj = k8s_api.object(ISVC, namespace, "fraud")
    assert obj["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Knative"
    assert obj["metadata"]["annotations"]["serving.kserve.io/enable-tag-routing"] == "true"
    assert "canaryTrafficPercent" not in obj["spec"]["predictor"]
    kserve_controller.mark_ready("fraud")
    assert knative.ready("fraud", "blue").ready
    assert knative.traffic("fraud") == {"blue": 100}

    # the candidate is a new revision at 0 %
    knative.apply("fraud", "green", V2)
    obj = k8s_api.object(ISVC, namespace, "fraud")
    assert obj["spec"]["predictor"]["canaryTrafficPercent"] == 0
    assert obj["spec"]["predictor"]["model"]["storageUri"] == V2.storage_uri
    assert knative.traffic("fraud") == {"green": 0, "blue": 100}
    assert not knative.ready("fraud", "green").ready  # generation 2 not reconciled
    assert knative.ready("fraud", "blue").ready  # the rolled-out revision still serves
    kserve_controller.mark_ready("fraud")
    assert knative.ready("fraud", "green").ready
    assert knative.endpoint("fraud", "green") == f"http://latest-fraud-predictor-{namespace}.example.ae"
    assert knative.endpoint("fraud", "blue") == f"http://prev-fraud-predictor-{namespace}.example.ae"
    assert knative.metrics_source("fraud", "green").selector == (
        f'namespace="{namespace}",pod=~"fraud-predictor-00002-deployment-.*"'
    )

    knative.set_traffic("fraud", {"blue": 90, "green": 10})
    assert k8s_api.object(ISVC, namespace, "fraud")["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert knative.traffic("fraud") == {"blue": 90, "green": 10}
    # rollback during the canary: the candidate goes back to 0 % at once
    knative.set_traffic("fraud", {"blue": 100})
    assert k8s_api.object(ISVC, namespace, "fraud")["spec"]["predictor"]["canaryTrafficPercent"] == 0
    knative.set_traffic("fraud", {"blue": 50, "green": 50})

    # promotion removes canaryTrafficPercent; KServe retires the old revision
    knative.set_traffic("fraud", {"green": 100})
    obj = k8s_api.object(ISVC, namespace, "fraud")
    assert "canaryTrafficPercent" not in obj["spec"]["predictor"]
    assert knative.traffic("fraud") == {"green": 100}
    assert knative.deployed("fraud") == {"green": V2}
    with pytest.raises(Conflict, match="re-apply blue"):
        knative.set_traffic("fraud", {"blue": 100})

    # switching back after promotion is a redeploy of blue as the new candidate
    knative.apply("fraud", "blue", V1)
    assert knative.traffic("fraud") == {"blue": 0, "green": 100}
    kserve_controller.mark_ready("fraud")
    assert knative.ready("fraud", "blue").ready
    knative.set_traffic("fraud", {"blue": 100})
    assert knative.deployed("fraud") == {"blue": V1}


def test_knative_drop_a_failed_candidate(knative, kserve_controller, k8s_api, namespace):
    knative.apply("fraud", "blue", V1)
    kserve_controller.mark_ready("fraud")
    knative.apply("fraud", "green", V2)
    kserve_controller.mark_failed("fraud")
    assert knative.ready("fraud", "green").failed
    knative.delete("fraud", "green")
    obj = k8s_api.object(ISVC, namespace, "fraud")
    assert obj["spec"]["predictor"]["model"]["storageUri"] == V1.storage_uri
    assert "canaryTrafficPercent" not in obj["spec"]["predictor"]
    assert knative.deployed("fraud") == {"blue": V1}
    assert knative.traffic("fraud") == {"blue": 100}
    with pytest.raises(Conflict):
        knative.delete("fraud", "blue")


def test_remove_route_takes_a_first_release_off_the_air(standard, knative, kserve_controller, k8s_api, namespace):
    # What the engine does when a first release fails after taking traffic: route down, then the candidate.
    standard.remove_route("fraud")  # nothing to remove: a no-op
    standard.apply("fraud", "blue", V1)
    kserve_controller.mark_ready("fraud-blue")
    standard.set_traffic("fraud", {"blue": 100})
    with pytest.raises(Conflict, match="still receives traffic"):
        standard.delete("fraud", "blue")
    standard.remove_route("fraud")
    assert k8s_api.object(ROUTE, namespace, "fraud") is None
    assert standard.traffic("fraud") == {}
    assert set(standard.deployed("fraud")) == {"blue"}  # the colour is removed by delete, not here
    standard.delete("fraud", "blue")
    assert k8s_api.object(ISVC, namespace, "fraud-blue") is None and standard.deployed("fraud") == {}

    # Knative: the InferenceService's own route is the only one, so it goes with its revisions.
    knative.apply("fraud", "blue", V1)
    kserve_controller.mark_ready("fraud")
    assert knative.traffic("fraud") == {"blue": 100}
    knative.remove_route("fraud")
    assert k8s_api.object(ISVC, namespace, "fraud") is None
    assert knative.traffic("fraud") == {} and knative.deployed("fraud") == {}
    knative.remove_route("fraud")  # idempotent


def test_api_errors_become_mlctl_errors_with_fixes(standard, k8s_api, prod, kubeconfig, namespace):
    k8s_api.fail_next(
        403, "Forbidden", 'inferenceservices.serving.kserve.io is forbidden: User "dev"', method="GET"
    )
    with pytest.raises(PolicyViolation, match="forbidden") as exc:
        standard.ready("fraud", "blue")
    assert "inferenceservices.serving.kserve.io" in (exc.value.hint or "")

    k8s_api.fail_next(401, "Unauthorized", "Unauthorized", method="GET")
    with pytest.raises(InfraError, match="credentials") as exc:
        standard.traffic("fraud")
    assert "update-kubeconfig" in (exc.value.hint or "")

    k8s_api.fail_next(503, "ServiceUnavailable", "etcd is unavailable", method="POST")
    with pytest.raises(InfraError, match="etcd is unavailable"):
        standard.apply("fraud", "blue", V1)

    standard.apply("fraud", "blue", V1)
    k8s_api.fail_next(409, "Conflict", "the object has been modified", method="PUT")
    with pytest.raises(Conflict, match="modified") as exc:
        standard.apply("fraud", "blue", V2)
    assert "again" in (exc.value.hint or "")

    # a cluster without KServe: the resource itself is unknown
    k8s_api.fail_next(404, "NotFound", "the server could not find the requested resource", method="GET")
    with pytest.raises(ToolMissing, match="does not serve this resource") as exc:
        standard.ready("fraud", "blue")
    assert "KServe" in (exc.value.hint or "")

    # something mlctl did not create is never overwritten
    import kubernetes

    api = kubernetes.client.CustomObjectsApi(kubernetes.config.new_client_from_config(str(kubeconfig)))
    foreign = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "legacy-green", "namespace": namespace},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "onnx"}, "storageUri": "s3://x/y"}}},
    }
    api.create_namespaced_custom_object(
        "serving.kserve.io", "v1beta1", namespace, "inferenceservices", foreign
    )
    with pytest.raises(Conflict, match="not managed by mlctl"):
        standard.apply("legacy", "green", V1)


def test_unreachable_cluster_and_bad_kubeconfig(prod, tmp_path):
    from control_plane.emulator.processes import free_port

    cfg = tmp_path / "kubeconfig"
    cfg.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: k, cluster: {{server: 'http://127.0.0.1:{free_port()}'}}}}]\n"
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
    )
    driver = KubernetesDriver(prod, kubeconfig=cfg)
    driver.api.configuration.retries = 0
    with pytest.raises(InfraError, match="cannot reach the Kubernetes API") as exc:
        driver.ready("fraud", "blue")
    assert exc.value.hint
    with pytest.raises(InfraError, match="cannot use kubeconfig"):
        KubernetesDriver(prod, kubeconfig=tmp_path / "missing")
    with pytest.raises(MlctlError, match="unknown colour"):
        driver.ready("fraud", "purple")


def test_invalid_objects_never_leave_the_process(standard, k8s_api, namespace):
    bad = deployment(
        "3", "sha256:" + "3" * 64, "rel-3", resources=Resources(cpu="lots", memory="8Gi", gpus=1)
    )
    with pytest.raises(MlctlError, match="CRD schema"):
        standard.apply("fraud", "blue", bad)
    elsewhere = deployment("4", "sha256:" + "4" * 64, "rel-4", storage_uri="s3://elsewhere/fraud/4/")
    with pytest.raises(PolicyViolation, match="outside the model registry"):
        standard.apply("fraud", "blue", elsewhere)
    assert k8s_api.object(ISVC, namespace, "fraud-blue") is None
    assert not [r for r in k8s_api.requests if str(r.method.value) == "POST" and namespace in str(r.url)]


def test_driver_for_environment_from_variables(prod, kubeconfig, namespace, monkeypatch, kserve_controller):
    from control_plane.kserve import driver_for_environment

    monkeypatch.setenv("MLCTL_KUBECONFIG", str(kubeconfig))
    monkeypatch.setenv("MLCTL_KSERVE_NAMESPACE", namespace)
    monkeypatch.setenv("MLCTL_KSERVE_MODE", "RawDeployment")  # the old name still works
    monkeypatch.setenv("MLCTL_SERVING_HOSTNAME", "fraud.models.bank.ae")
    monkeypatch.setenv("MLCTL_PROMETHEUS_URL", "http://prom.internal:9090")
    driver = driver_for_environment(prod)
    assert driver.namespace == namespace and driver.mode.value == "Standard"
    driver.apply("fraud", "blue", V1)
    kserve_controller.mark_ready("fraud-blue")
    assert driver.ready("fraud", "blue").ready
    assert driver.endpoint("fraud") == "https://fraud.models.bank.ae"
    assert driver.metrics_source("fraud", "blue").url == "http://prom.internal:9090"


def test_release_engine_picks_this_driver_for_a_cluster_environment(kubeconfig, namespace, monkeypatch):
    release = pytest.importorskip("control_plane.release")
    monkeypatch.setenv("MLCTL_KUBECONFIG", str(kubeconfig))
    monkeypatch.setenv("MLCTL_KSERVE_NAMESPACE", namespace)
    driver = release.driver_for("uae-prod-aws")  # drivers.select.for_environment on the resolved env
    assert isinstance(driver, KubernetesDriver) and driver.namespace == namespace
    assert driver.traffic("fraud") == {}
