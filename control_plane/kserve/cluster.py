"""What both serving modes share: the namespace's custom objects, rendering, and the records and
readiness read off an InferenceService.

``Cluster`` is the only place that calls the Kubernetes API for the driver: get / write (create or
exact replace) / patch / delete one InferenceService or HTTPRoute, each through ``api_call`` (API
errors become ``MlctlError`` with a fix) and, when the CRDs are present, validated before it
leaves the process.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Final, cast

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from blueprints.schema import Environment
from control_plane.drivers.base import Deployment, Readiness
from control_plane.errors import Conflict
from control_plane.kserve import crds, naming, render
from control_plane.kserve.k8s_errors import api_call
from control_plane.kserve.model import ModelFormat, ServedModel, ServingOptions

GROUP: Final = "serving.kserve.io"
VERSION: Final = "v1beta1"
PLURAL: Final = "inferenceservices"
ROUTE_GROUP: Final = "gateway.networking.k8s.io"
ROUTE_VERSION: Final = "v1"
ROUTE_PLURAL: Final = "httproutes"

# Readiness conditions KServe sets on an InferenceService (v0.15+).
_REQUIRED_CONDITIONS: Final = ("Ready", "PredictorReady")
# Model states/transitions from which only a new apply recovers.
_FAILED_MODEL_STATES: Final = {"FailedToLoad"}
_FAILED_TRANSITIONS: Final = {"BlockedByFailedLoad", "InvalidSpec"}


def served_model(deployment: Deployment) -> ServedModel:
    return ServedModel(
        name=deployment.model_name,
        version=deployment.model_version,
        digest=deployment.digest,
        release_id=deployment.release_id,
        format=ModelFormat(deployment.model_format),
        storage_uri=deployment.storage_uri,
    )


def same(a: Deployment | None, b: Deployment) -> bool:
    """``a`` is exactly ``b`` as far as the cluster is concerned (an apply of ``b`` is a no-op)."""
    return (
        a is not None
        and a.release_id == b.release_id
        and a.digest == b.digest
        and a.storage_uri == b.storage_uri
    )


def _object_missing(exc: ApiException) -> bool:
    """404 for the object, as opposed to 404 for the resource type (KServe not installed)."""
    return exc.status == 404 and "could not find the requested resource" not in (exc.body or "")


def _group_version(plural: str) -> tuple[str, str]:
    return (GROUP, VERSION) if plural == PLURAL else (ROUTE_GROUP, ROUTE_VERSION)


def status(obj: dict[str, Any] | None) -> dict[str, Any]:
    return dict((obj or {}).get("status") or {})


def predictor_status(obj: dict[str, Any] | None) -> dict[str, Any]:
    return dict((status(obj).get("components") or {}).get("predictor") or {})


def deployment_of(obj: dict[str, Any]) -> Deployment | None:
    """The ``Deployment`` recorded on the object by ``apply`` (None when absent or unreadable)."""
    raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(naming.ANNOTATION_DEPLOYMENT)
    if not raw:
        return None
    try:
        return Deployment.from_dict(json.loads(raw))
    except (TypeError, ValueError, KeyError):
        return None


def isvc_readiness(obj: dict[str, Any]) -> Readiness:
    """Ready = KServe reports Ready and PredictorReady *for the current spec* and the model loaded."""
    name = obj["metadata"]["name"]
    st = status(obj)
    model_status = st.get("modelStatus") or {}
    state = (model_status.get("states") or {}).get("activeModelState", "")
    transition = model_status.get("transitionStatus", "")
    failure = model_status.get("lastFailureInfo") or {}
    generation = obj["metadata"].get("generation")
    observed = st.get("observedGeneration")
    # Status written for an older spec says nothing about this one, failures included: a
    # fixed model re-applied over a failed one must not be judged by the old failure.
    if observed is None or generation is None or int(observed) < int(generation):
        return Readiness(
            False, f"{name}: KServe has not reconciled generation {generation} yet (observed {observed})"
        )
    if state in _FAILED_MODEL_STATES or transition in _FAILED_TRANSITIONS:
        detail = failure.get("message") or failure.get("reason") or transition or state
        return Readiness(False, f"{name}: the model failed to load ({detail})", failed=True)
    conditions = {c.get("type", ""): c for c in st.get("conditions") or []}
    for ctype in _REQUIRED_CONDITIONS:
        cond = conditions.get(ctype)
        if cond is None or cond.get("status") != "True":
            why = (cond or {}).get("message") or (cond or {}).get("reason") or "not reported"
            return Readiness(False, f"{name}: condition {ctype} is not True ({why})")
    if state != "Loaded":
        return Readiness(False, f"{name}: model state is {state or 'unknown'}, waiting for Loaded")
    return Readiness(True, f"{name}: ready, model loaded")


class Cluster:
    """The driver's namespace on the cluster: custom objects in, custom objects out."""

    def __init__(
        self, objects: k8s.CustomObjectsApi, env: Environment, options: ServingOptions, *, validate: bool
    ) -> None:
        self.objects = objects
        self.env = env
        self.options = options
        self.namespace = options.namespace
        self.validate = validate

    def get(self, plural: str, name: str) -> dict[str, Any] | None:
        group, version = _group_version(plural)
        with api_call(f"read {plural} {name}", namespace=self.namespace):
            try:
                return cast(
                    dict[str, Any],
                    self.objects.get_namespaced_custom_object(group, version, self.namespace, plural, name),
                )
            except ApiException as exc:
                if _object_missing(exc):
                    return None
                raise

    def write(self, obj: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any]:
        """Create ``obj``, or replace ``current`` with it (exact spec: no stale fields survive)."""
        if self.validate:
            crds.validate(obj)
        group, _, version = obj["apiVersion"].partition("/")
        plural = PLURAL if obj["kind"] == render.KIND else ROUTE_PLURAL
        name = obj["metadata"]["name"]
        with api_call(f"write {obj['kind']} {name}", namespace=self.namespace):
            if current is None:
                created = cast(
                    dict[str, Any],
                    self.objects.create_namespaced_custom_object(group, version, self.namespace, plural, obj),
                )
                return created
            body = json.loads(json.dumps(obj))
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            replaced = cast(
                dict[str, Any],
                self.objects.replace_namespaced_custom_object(
                    group, version, self.namespace, plural, name, body
                ),
            )
            return replaced

    def patch(self, plural: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        group, version = _group_version(plural)
        with api_call(f"patch {plural} {name}", namespace=self.namespace):
            out = cast(
                dict[str, Any],
                self.objects.patch_namespaced_custom_object(
                    group, version, self.namespace, plural, name, patch
                ),
            )
            return out

    def delete(self, plural: str, name: str) -> None:
        group, version = _group_version(plural)
        with api_call(f"delete {plural} {name}", namespace=self.namespace):
            try:
                self.objects.delete_namespaced_custom_object(group, version, self.namespace, plural, name)
            except ApiException as exc:
                if not _object_missing(exc):
                    raise  # (a missing object is already deleted: idempotent)

    @staticmethod
    def check_managed(obj: dict[str, Any] | None) -> None:
        labels = ((obj or {}).get("metadata") or {}).get("labels") or {}
        if obj is not None and labels.get(naming.LABEL_MANAGED_BY) != naming.MANAGED_BY:
            raise Conflict(
                f"{obj.get('kind')} {obj['metadata'].get('name')} exists and is not managed by mlctl",
                hint="pick another service name, or remove the object if it is a leftover",
            )

    def render(self, service: str, colour: str | None, dep: Deployment, **kw: Any) -> dict[str, Any]:
        """The InferenceService for ``dep``, sized by its resources."""
        # The Deployment's resources size the server; gpus=0 there (the local default) means "the
        # cluster's default", since Triton on a GPU pool is what the cluster runs.
        opts = replace(
            self.options,
            cpu=dep.resources.cpu,
            memory=dep.resources.memory,
            gpus=dep.resources.gpus or self.options.gpus,
        )
        return render.render_inference_service(
            served_model(dep), self.env, service=service, colour=colour, options=opts, **kw
        )
