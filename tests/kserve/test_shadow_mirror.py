"""Shadow releases on Kubernetes: the Gateway API HTTPRoute ``RequestMirror`` filter (Standard
mode), validated against the real Gateway API CRD and written through the API emulator; Knative
mode refuses shadow releases with a plain error before anything is created."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from control_plane.errors import Conflict, MlctlError
from control_plane.kserve import crds
from control_plane.kserve.driver import KubernetesDriver
from control_plane.kserve.httproute import mirror_of, render_http_route, weights_of
from control_plane.kserve.model import ServingOptions
from control_plane.release import shadow
from tests.kserve.conftest import ROUTE
from tests.kserve.test_driver import V1, V2


@pytest.fixture(scope="module")
def prod():
    from blueprints.loader import load_environment
    from control_plane.settings import BLUEPRINTS_DIR

    return load_environment(BLUEPRINTS_DIR / "uae-prod-aws.yaml")


def test_mirror_filter_renders_and_validates_against_the_gateway_api_crd(crds_available):
    route = render_http_route(service="fraud", weights={"blue": 100}, mirror=("green", 20))
    assert crds.validation_errors(route) == []
    weighted = route["spec"]["rules"][-1]
    assert weighted["filters"] == [
        {
            "type": "RequestMirror",
            "requestMirror": {
                "backendRef": {"group": "", "kind": "Service", "name": "fraud-green-predictor", "port": 80},
                "percent": 20,
            },
        }
    ]
    # the header rules (smoke tests straight to a colour) are not mirrored
    assert all("filters" not in r for r in route["spec"]["rules"][:-1])
    assert mirror_of(route, "fraud") == ("green", 20)
    assert {str(c): w for c, w in weights_of(route, "fraud").items()} == {"blue": 100, "green": 0}
    assert mirror_of(render_http_route(service="fraud", weights={"blue": 100}), "fraud") is None
    with pytest.raises(MlctlError, match="mirror percent 0"):
        render_http_route(service="fraud", weights={"blue": 100}, mirror=("green", 0))
    # the CRD itself refuses what we must never write: a percent over 100
    bad = render_http_route(service="fraud", weights={"blue": 100}, mirror=("green", 20))
    bad["spec"]["rules"][-1]["filters"][0]["requestMirror"]["percent"] = 101
    assert crds.validation_errors(bad)


def test_standard_mode_mirror_through_the_api_emulator(
    prod, kubeconfig, namespace, kserve_controller, k8s_api
):
    driver = KubernetesDriver(prod, options=ServingOptions(namespace=namespace), kubeconfig=kubeconfig)
    assert isinstance(driver, shadow.Mirroring) and driver.mirror_support() is None
    driver.apply("fraud", "blue", V1)
    kserve_controller.mark_ready("fraud-blue")
    driver.set_traffic("fraud", {"blue": 100})
    with pytest.raises(Conflict, match="green: it is not deployed"):
        driver.set_mirror("fraud", "green", 10)
    driver.apply("fraud", "green", V2)
    kserve_controller.mark_ready("fraud-green")

    driver.set_mirror("fraud", "green", 10)
    stored = k8s_api.object(ROUTE, namespace, "fraud")
    mirror = stored["spec"]["rules"][-1]["filters"][0]["requestMirror"]
    assert mirror["backendRef"]["name"] == "fraud-green-predictor" and mirror["percent"] == 10
    assert driver.mirror("fraud") == {"colour": "green", "percent": 10}
    assert driver.traffic("fraud") == {"blue": 100, "green": 0}  # mirroring moves no traffic
    rv = stored["metadata"]["resourceVersion"]
    driver.set_mirror("fraud", "green", 10)  # in force already: no write (resume is cheap)
    assert k8s_api.object(ROUTE, namespace, "fraud")["metadata"]["resourceVersion"] == rv

    driver.set_traffic("fraud", {"blue": 90, "green": 10})  # a weight change keeps the mirror
    assert driver.mirror("fraud") == {"colour": "green", "percent": 10}
    driver.set_traffic("fraud", {"blue": 100})
    assert shadow.stop_mirror(driver, "fraud") is True
    assert driver.mirror("fraud") is None
    assert "filters" not in k8s_api.object(ROUTE, namespace, "fraud")["spec"]["rules"][-1]
    assert shadow.stop_mirror(driver, "fraud") is False  # idempotent


def test_knative_mode_refuses_shadow_plainly(prod, kubeconfig, namespace, mlctl_home):
    from control_plane.release.config import ReleaseConfig
    from control_plane.release.engine import Engine
    from control_plane.release.models import ReleaseRow
    from control_plane.store import session_scope

    knative = KubernetesDriver(
        prod, options=ServingOptions(namespace=namespace, mode="Knative"), kubeconfig=kubeconfig
    )
    assert "Knative" in (knative.mirror_support() or "")
    with pytest.raises(MlctlError, match="shadow releases are not supported here") as exc:
        Engine(knative).start(
            model_name="fraud-scoring",
            version="1",
            env_name="uae-prod-aws",
            config=ReleaseConfig(strategy="shadow"),
            service="fraud",
        )
    assert "Standard mode" in exc.value.message and "canary" in (exc.value.hint or "")
    with session_scope() as s:
        assert list(s.scalars(select(ReleaseRow))) == []  # refused before anything was recorded
    with pytest.raises(MlctlError, match="Knative"):
        knative.set_mirror("fraud", "green", 10)
    assert knative.mirror("fraud") is None
