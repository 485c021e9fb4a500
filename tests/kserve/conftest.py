"""Fixtures for the Kubernetes side: the API emulator with the real KServe and Gateway API CRDs,
a kubeconfig pointing at it, and a fixture that plays the KServe controller by writing status."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.k8s_emulator import KubernetesApi, crd_file, crds_dir, have_crds

ISVC_CRD = "serving.kserve.io_inferenceservices.yaml"
ROUTE_CRD = "gateway.networking.k8s.io_httproutes.yaml"
ISVC = "serving.kserve.io/v1beta1/inferenceservices"
ROUTE = "gateway.networking.k8s.io/v1/httproutes"


def _need_crds() -> None:
    if not have_crds(ISVC_CRD, ROUTE_CRD):
        pytest.skip(
            f"KServe / Gateway API CRDs not found in {crds_dir()} "
            "(set KSERVE_CRDS_DIR to a folder holding the CRD YAML files)"
        )


@pytest.fixture()
def crds_available() -> None:
    _need_crds()


@pytest.fixture(scope="session")
def k8s_api() -> Iterator[KubernetesApi]:
    """One emulated API server for the session (CRD parsing costs ~1 s); tests use own namespaces."""
    _need_crds()
    with KubernetesApi(crds=[crd_file(ISVC_CRD), crd_file(ROUTE_CRD)]) as api:
        yield api


@pytest.fixture()
def namespace() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture()
def kubeconfig(k8s_api: KubernetesApi, tmp_path: Path, namespace: str) -> Path:
    return k8s_api.write_kubeconfig(tmp_path / "kubeconfig", namespace=namespace)


class KServeController:
    """Plays KServe's controller: reads an InferenceService and writes the status KServe would.

    It talks to the emulator over HTTP through the ``/status`` subresource, like the real controller,
    so the driver only ever sees what a cluster would show it.
    """

    def __init__(self, api: KubernetesApi, kubeconfig: Path, namespace: str) -> None:
        import kubernetes

        self.api = api
        self.namespace = namespace
        self.client = kubernetes.client.CustomObjectsApi(
            kubernetes.config.new_client_from_config(str(kubeconfig))
        )

    def get(self, name: str) -> dict[str, Any]:
        obj = self.api.object(ISVC, self.namespace, name)
        assert obj is not None, f"InferenceService {self.namespace}/{name} does not exist"
        return obj

    def _write(self, name: str, status: dict[str, Any]) -> None:
        self.client.patch_namespaced_custom_object_status(
            "serving.kserve.io", "v1beta1", self.namespace, "inferenceservices", name, {"status": status}
        )

    def _conditions(self, ready: bool, message: str = "") -> list[dict[str, str]]:
        status = "True" if ready else "False"
        out = []
        for ctype in ("IngressReady", "PredictorReady", "Ready"):
            cond = {"type": ctype, "status": status, "lastTransitionTime": "2026-11-27T10:00:00Z"}
            if not ready and message:
                cond["message"] = message
                cond["reason"] = "PredictorNotReady"
            out.append(cond)
        return out

    def _revision(self, name: str, generation: int) -> str:
        return f"{name}-predictor-{generation:05d}"

    def mark_ready(self, name: str, *, generation: int | None = None) -> dict[str, Any]:
        """Reconciled the current (or the given) generation: Ready, predictor ready, model Loaded."""
        obj = self.get(name)
        gen = generation if generation is not None else int(obj["metadata"]["generation"])
        annotations = obj["metadata"].get("annotations") or {}
        mode = annotations.get("serving.kserve.io/deploymentMode", "Standard")
        status: dict[str, Any] = {
            "observedGeneration": gen,
            "url": f"http://{name}-{self.namespace}.example.ae",
            "address": {"url": f"http://{name}-predictor.{self.namespace}.svc.cluster.local"},
            "deploymentMode": mode,
            "conditions": self._conditions(True),
            "modelStatus": {
                "states": {"activeModelState": "Loaded", "targetModelState": "Loaded"},
                "transitionStatus": "UpToDate",
                "copies": {"failedCopies": 0, "totalCopies": 1},
            },
            "components": {"predictor": self._predictor_component(name, obj, gen, mode)},
        }
        self._write(name, status)
        return status

    def _predictor_component(self, name: str, obj: dict[str, Any], gen: int, mode: str) -> dict[str, Any]:
        if mode != "Knative":
            return {"url": f"http://{name}-predictor-{self.namespace}.example.ae"}
        previous = ((obj.get("status") or {}).get("components") or {}).get("predictor") or {}
        latest = self._revision(name, gen)
        rolled_out = previous.get("latestRolledoutRevision")
        canary = (obj["spec"]["predictor"]).get("canaryTrafficPercent")
        # Like KServe: without canaryTrafficPercent (or at 100 %) the latest revision is rolled out.
        if canary is None or canary == 100 or not rolled_out:
            component = {
                "latestCreatedRevision": latest,
                "latestReadyRevision": latest,
                "latestRolledoutRevision": latest,
                "traffic": [
                    {
                        "tag": "latest",
                        "revisionName": latest,
                        "latestRevision": True,
                        "percent": 100,
                        "url": f"http://latest-{name}-predictor-{self.namespace}.example.ae",
                    }
                ],
            }
            if rolled_out and rolled_out != latest:
                component["previousRolledoutRevision"] = rolled_out
            return component
        return {
            "latestCreatedRevision": latest,
            "latestReadyRevision": latest,
            "latestRolledoutRevision": rolled_out,
            "traffic": [
                {
                    "tag": "latest",
                    "revisionName": latest,
                    "latestRevision": True,
                    "percent": canary,
                    "url": f"http://latest-{name}-predictor-{self.namespace}.example.ae",
                },
                {
                    "tag": "prev",
                    "revisionName": rolled_out,
                    "latestRevision": False,
                    "percent": 100 - canary,
                    "url": f"http://prev-{name}-predictor-{self.namespace}.example.ae",
                },
            ],
        }

    def mark_loading(self, name: str) -> None:
        """Reconciled, pods up, the model still loading (Ready False)."""
        obj = self.get(name)
        self._write(
            name,
            {
                "observedGeneration": int(obj["metadata"]["generation"]),
                "conditions": self._conditions(False, "model is loading"),
                "modelStatus": {"states": {"activeModelState": "Loading"}, "transitionStatus": "InProgress"},
            },
        )

    def mark_failed(self, name: str, message: str = "failed to load model: bad ONNX file") -> None:
        obj = self.get(name)
        self._write(
            name,
            {
                "observedGeneration": int(obj["metadata"]["generation"]),
                "conditions": self._conditions(False, message),
                "modelStatus": {
                    "states": {"activeModelState": "FailedToLoad", "targetModelState": "Loaded"},
                    "transitionStatus": "BlockedByFailedLoad",
                    "lastFailureInfo": {"reason": "ModelLoadFailed", "message": message},
                },
            },
        )


@pytest.fixture()
def kserve_controller(k8s_api: KubernetesApi, kubeconfig: Path, namespace: str) -> KServeController:
    return KServeController(k8s_api, kubeconfig, namespace)
