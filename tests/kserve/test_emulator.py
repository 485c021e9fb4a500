"""The API emulator itself behaves like an API server where our drivers depend on it."""

from __future__ import annotations

import kubernetes
import pytest
from kubernetes.client.exceptions import ApiException

from tests.k8s_emulator import KubernetesApi

ISVC = ("serving.kserve.io", "v1beta1")


def _isvc(name: str, ns: str, **predictor: object) -> dict:
    model = {"modelFormat": {"name": "onnx"}, "storageUri": "s3://b/m/"}
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"predictor": {"model": model, **predictor}},
        "status": {"url": "set-by-a-client"},
    }


def test_generation_status_subresource_and_validation(k8s_api, kubeconfig, namespace):
    api = kubernetes.client.CustomObjectsApi(kubernetes.config.new_client_from_config(str(kubeconfig)))
    created = api.create_namespaced_custom_object(
        *ISVC, namespace, "inferenceservices", _isvc("m", namespace)
    )
    meta = created["metadata"]
    assert meta["generation"] == 1 and meta["uid"] and meta["resourceVersion"]
    assert "status" not in created  # status is the controller's
    # status writes do not bump the generation; spec writes do; metadata-only writes do not
    api.patch_namespaced_custom_object_status(
        *ISVC, namespace, "inferenceservices", "m", {"status": {"observedGeneration": 1}}
    )
    same = api.patch_namespaced_custom_object(
        *ISVC, namespace, "inferenceservices", "m", {"metadata": {"labels": {"a": "b"}}}
    )
    assert same["metadata"]["generation"] == 1 and same["status"] == {"observedGeneration": 1}
    bumped = api.patch_namespaced_custom_object(
        *ISVC, namespace, "inferenceservices", "m", {"spec": {"predictor": {"minReplicas": 2}}}
    )
    assert bumped["metadata"]["generation"] == 2
    # server-side validation against the real CRD schema
    with pytest.raises(ApiException) as exc:
        api.patch_namespaced_custom_object(
            *ISVC, namespace, "inferenceservices", "m", {"spec": {"predictor": {"minReplicas": "two"}}}
        )
    assert exc.value.status == 422 and "minReplicas" in exc.value.body
    # optimistic concurrency
    stale = dict(bumped)
    stale["metadata"] = {**bumped["metadata"], "resourceVersion": created["metadata"]["resourceVersion"]}
    with pytest.raises(ApiException) as exc:
        api.replace_namespaced_custom_object(*ISVC, namespace, "inferenceservices", "m", stale)
    assert exc.value.status == 409
    with pytest.raises(ApiException) as exc:
        api.create_namespaced_custom_object(*ISVC, namespace, "inferenceservices", _isvc("m", namespace))
    assert exc.value.status == 409 and '"AlreadyExists"' in exc.value.body


def test_builtin_resources_for_other_drivers(tmp_path):
    """The shape another test package uses for Jobs (no CRDs needed)."""
    with KubernetesApi(builtins=[("batch/v1/jobs", "Job"), ("v1/pods", "Pod")]) as k8s:
        client = kubernetes.config.new_client_from_config(str(k8s.write_kubeconfig(tmp_path / "kc")))
        batch = kubernetes.client.BatchV1Api(client)
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "build-plan"},
            "spec": {
                "template": {"spec": {"containers": [{"name": "c", "image": "i"}], "restartPolicy": "Never"}}
            },
        }
        batch.create_namespaced_job("builds", job)
        batch.patch_namespaced_job_status("build-plan", "builds", {"status": {"active": 1}})
        assert batch.read_namespaced_job("build-plan", "builds").status.active == 1
        k8s.set_status("batch/v1/jobs", "builds", "build-plan", {"active": None, "succeeded": 1})
        got = batch.read_namespaced_job("build-plan", "builds")
        assert got.status.succeeded == 1 and got.status.active is None and got.metadata.generation == 1
        assert k8s.object("batch/v1/jobs", "builds", "build-plan")["status"] == {"succeeded": 1}
        pods = kubernetes.client.CoreV1Api(client).list_namespaced_pod("builds")
        assert pods.items == []
