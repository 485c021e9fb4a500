"""The Kubernetes driver: KServe InferenceServices on the environment's cluster (``drivers.base.Driver``).

Two traffic models, chosen by ``ServingOptions.mode``:

**Standard** (KServe's default, plain Deployments): one InferenceService per colour
(``<service>-blue``, ``<service>-green``) and one Gateway API HTTPRoute ``<service>`` whose weighted
backendRefs split production traffic between the colours' predictor Services. Switching and
switching back are one HTTPRoute write each, so rollback is instant while the old colour is up.

**Knative** (Serverless): one InferenceService ``<service>``; a release is a new revision.
The candidate colour is the latest revision, the other colour the last rolled-out one, and the
split is ``spec.predictor.canaryTrafficPercent``; tag routing gives the candidate its own URL for
smoke tests. When the candidate takes 100 % KServe retires the previous revision, so switching
back after that is a redeploy of the old colour (``apply``), not a weight change; ``deployed()``
then lists only the colour that is still routable, which is how the release engine knows.

What each colour runs is recorded on the objects themselves (labels, and the whole
``Deployment`` as JSON in annotations): a new mlctl process (``release resume``) reads the
cluster, not local state.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Final, cast

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from blueprints.schema import Environment
from control_plane import settings
from control_plane.drivers.base import (
    COLOURS,
    Deployment,
    MetricsSource,
    Readiness,
    check_weights,
    other_colour,
)
from control_plane.errors import Conflict, InfraError, MlctlError
from control_plane.kserve import crds, httproute, naming, render
from control_plane.kserve.k8s_errors import api_call
from control_plane.kserve.model import DeploymentMode, ModelFormat, ServedModel, ServingOptions, parse_mode

GROUP: Final = "serving.kserve.io"
VERSION: Final = "v1beta1"
PLURAL: Final = "inferenceservices"
ROUTE_GROUP: Final = "gateway.networking.k8s.io"
ROUTE_VERSION: Final = "v1"
ROUTE_PLURAL: Final = "httproutes"
# Knative mode bookkeeping on the single InferenceService.
ANNOTATION_COLOURS: Final = f"{naming.PREFIX}/colours"  # {colour: Deployment} of routable colours
ANNOTATION_LATEST: Final = f"{naming.PREFIX}/latest-colour"  # the colour in the latest revision
DEFAULT_PROMETHEUS: Final = "http://prometheus-operated.monitoring.svc:9090"

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


def _same(a: Deployment | None, b: Deployment) -> bool:
    return (
        a is not None
        and a.release_id == b.release_id
        and a.digest == b.digest
        and a.storage_uri == b.storage_uri
    )


def _object_missing(exc: ApiException) -> bool:
    """404 for the object, as opposed to 404 for the resource type (KServe not installed)."""
    return exc.status == 404 and "could not find the requested resource" not in (exc.body or "")


def _conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c.get("type", ""): c for c in (obj.get("status") or {}).get("conditions") or []}


class KubernetesDriver:
    """KServe on Kubernetes through the official client (see ``drivers.base`` for the contract)."""

    name = "kubernetes"

    def __init__(
        self,
        env: Environment,
        *,
        options: ServingOptions | None = None,
        api_client: k8s.ApiClient | None = None,
        kubeconfig: str | Path | None = None,
        context: str | None = None,
        prometheus_url: str = DEFAULT_PROMETHEUS,
        validate: bool | None = None,
    ) -> None:
        self.env = env
        self.options = options or ServingOptions()
        self.namespace = self.options.namespace
        self.mode = self.options.mode
        self.prometheus_url = prometheus_url.rstrip("/")
        # None: validate against the CRDs when their folder is present (always in tests and CI).
        self.validate = validate if validate is not None else crds.crds_dir().is_dir()
        self.api = api_client or self._client(kubeconfig, context)
        self.objects = k8s.CustomObjectsApi(self.api)

    @staticmethod
    def _client(kubeconfig: str | Path | None, context: str | None) -> k8s.ApiClient:
        """kubeconfig (explicit, $KUBECONFIG, ~/.kube/config), else the in-cluster service account."""
        try:
            return k8s_config.new_client_from_config(
                config_file=str(kubeconfig) if kubeconfig else None, context=context
            )
        except (k8s_config.ConfigException, OSError) as exc:
            if kubeconfig or context:
                raise InfraError(
                    f"cannot use kubeconfig {kubeconfig or '(default)'} "
                    f"context {context or '(current)'}: {exc}",
                    hint="pass --kubeconfig FILE (and --context NAME) for the serving cluster",
                ) from None
        cfg = k8s.Configuration()
        try:
            k8s_config.load_incluster_config(client_configuration=cfg)
        except k8s_config.ConfigException:
            raise InfraError(
                "no Kubernetes configuration: no kubeconfig and not running in a cluster",
                hint="pass --kubeconfig (or set KUBECONFIG) for the serving cluster",
            ) from None
        return k8s.ApiClient(cfg)

    # -- low-level object access --------------------------------------------------------------
    def _get(self, plural: str, name: str) -> dict[str, Any] | None:
        group, version = (GROUP, VERSION) if plural == PLURAL else (ROUTE_GROUP, ROUTE_VERSION)
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

    def _write(self, obj: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any]:
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

    def _patch(self, plural: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        group, version = (GROUP, VERSION) if plural == PLURAL else (ROUTE_GROUP, ROUTE_VERSION)
        with api_call(f"patch {plural} {name}", namespace=self.namespace):
            out = cast(
                dict[str, Any],
                self.objects.patch_namespaced_custom_object(
                    group, version, self.namespace, plural, name, patch
                ),
            )
            return out

    def _delete(self, plural: str, name: str) -> None:
        group, version = (GROUP, VERSION) if plural == PLURAL else (ROUTE_GROUP, ROUTE_VERSION)
        with api_call(f"delete {plural} {name}", namespace=self.namespace):
            try:
                self.objects.delete_namespaced_custom_object(group, version, self.namespace, plural, name)
            except ApiException as exc:
                if not _object_missing(exc):
                    raise  # (a missing object is already deleted: idempotent)

    @staticmethod
    def _check_managed(obj: dict[str, Any] | None) -> None:
        labels = ((obj or {}).get("metadata") or {}).get("labels") or {}
        if obj is not None and labels.get(naming.LABEL_MANAGED_BY) != naming.MANAGED_BY:
            raise Conflict(
                f"{obj.get('kind')} {obj['metadata'].get('name')} exists and is not managed by mlctl",
                hint="pick another service name, or remove the object if it is a leftover",
            )

    def _render(self, service: str, colour: str | None, dep: Deployment, **kw: Any) -> dict[str, Any]:
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

    @staticmethod
    def _colour_check(colour: str) -> None:
        if colour not in COLOURS:
            raise MlctlError(f"unknown colour {colour!r}", hint=f"use one of {', '.join(COLOURS)}")

    # -- Driver: apply ---------------------------------------------------------------------------
    def apply(self, service: str, colour: str, deployment: Deployment) -> None:
        self._colour_check(colour)
        if self.mode is DeploymentMode.knative:
            self._apply_knative(service, colour, deployment)
            return
        name = render.isvc_name(service, colour, self.mode)
        current = self._get(PLURAL, name)
        self._check_managed(current)
        if current is not None and _same(self._deployment_of(current), deployment):
            return  # exactly this is applied already: idempotent
        if current is not None and self.traffic(service).get(colour, 0) > 0:
            raise Conflict(
                f"{service}/{colour} still receives traffic; it cannot be replaced",
                hint=f"move traffic to {other_colour(colour)} first (set_traffic), then apply",
            )
        obj = self._render(
            service,
            colour,
            deployment,
            annotations={naming.ANNOTATION_DEPLOYMENT: json.dumps(deployment.to_dict(), sort_keys=True)},
        )
        self._write(obj, current)

    def _apply_knative(self, service: str, colour: str, deployment: Deployment) -> None:
        current = self._get(PLURAL, service)
        self._check_managed(current)
        colours = self._knative_colours(current)
        latest = self._knative_latest(current)
        if current is not None and latest == colour and _same(colours.get(colour), deployment):
            return
        weights = self._knative_weights(current)
        if current is not None and weights.get(colour, 0) > 0:
            raise Conflict(
                f"{service}/{colour} still receives traffic; it cannot be replaced",
                hint=f"move traffic to {other_colour(colour)} first (set_traffic), then apply",
            )
        # The other colour keeps its revision (and all the traffic) while the new one starts at 0 %.
        keep = {c: d for c, d in colours.items() if c != colour and weights.get(c, 0) > 0}
        new_colours = {**keep, colour: deployment}
        obj = self._render(
            service,
            None,
            deployment,
            canary_traffic_percent=0 if keep else None,
            annotations=self._knative_annotations(new_colours, colour),
        )
        self._write(obj, current)

    # -- Driver: readiness -------------------------------------------------------------------------
    def ready(self, service: str, colour: str) -> Readiness:
        self._colour_check(colour)
        if self.mode is DeploymentMode.knative:
            return self._ready_knative(service, colour)
        name = render.isvc_name(service, colour, self.mode)
        obj = self._get(PLURAL, name)
        if obj is None:
            return Readiness(False, f"InferenceService {self.namespace}/{name} does not exist", failed=True)
        return self._isvc_readiness(obj)

    def _isvc_readiness(self, obj: dict[str, Any]) -> Readiness:
        """Ready = KServe reports Ready and PredictorReady *for the current spec* and the model loaded."""
        name = obj["metadata"]["name"]
        status = obj.get("status") or {}
        model_status = status.get("modelStatus") or {}
        state = (model_status.get("states") or {}).get("activeModelState", "")
        transition = model_status.get("transitionStatus", "")
        failure = model_status.get("lastFailureInfo") or {}
        generation = obj["metadata"].get("generation")
        observed = status.get("observedGeneration")
        # Status written for an older spec says nothing about this one, failures included: a
        # fixed model re-applied over a failed one must not be judged by the old failure.
        if observed is None or generation is None or int(observed) < int(generation):
            return Readiness(
                False, f"{name}: KServe has not reconciled generation {generation} yet (observed {observed})"
            )
        if state in _FAILED_MODEL_STATES or transition in _FAILED_TRANSITIONS:
            detail = failure.get("message") or failure.get("reason") or transition or state
            return Readiness(False, f"{name}: the model failed to load ({detail})", failed=True)
        conditions = _conditions(obj)
        for ctype in _REQUIRED_CONDITIONS:
            cond = conditions.get(ctype)
            if cond is None or cond.get("status") != "True":
                why = (cond or {}).get("message") or (cond or {}).get("reason") or "not reported"
                return Readiness(False, f"{name}: condition {ctype} is not True ({why})")
        if state != "Loaded":
            return Readiness(False, f"{name}: model state is {state or 'unknown'}, waiting for Loaded")
        return Readiness(True, f"{name}: ready, model loaded")

    def _ready_knative(self, service: str, colour: str) -> Readiness:
        obj = self._get(PLURAL, service)
        colours = self._knative_colours(obj)
        if obj is None or colour not in colours:
            return Readiness(False, f"{service}/{colour} is not deployed (no routable revision)", failed=True)
        if colour == self._knative_latest(obj):
            base = self._isvc_readiness(obj)
            predictor = ((obj.get("status") or {}).get("components") or {}).get("predictor") or {}
            created, ready_rev = predictor.get("latestCreatedRevision"), predictor.get("latestReadyRevision")
            if base.ready and created != ready_rev:
                return Readiness(
                    False, f"{service}: revision {created} is not ready yet (ready: {ready_rev})"
                )
            return base
        predictor = ((obj.get("status") or {}).get("components") or {}).get("predictor") or {}
        if predictor.get("latestRolledoutRevision"):
            return Readiness(
                True, f"{service}/{colour}: serving revision {predictor['latestRolledoutRevision']}"
            )
        return Readiness(False, f"{service}/{colour}: no rolled-out revision reported yet")

    # -- Driver: traffic -----------------------------------------------------------------------------
    def traffic(self, service: str) -> dict[str, int]:
        if self.mode is DeploymentMode.knative:
            return self._knative_weights(self._get(PLURAL, service))
        route = self._get(ROUTE_PLURAL, httproute.route_name(service))
        if route is None:
            return {}
        return {str(c): w for c, w in httproute.weights_of(route, service).items()}

    def set_traffic(self, service: str, weights: dict[str, int]) -> None:
        split = check_weights(weights)
        if self.mode is DeploymentMode.knative:
            self._set_traffic_knative(service, split)
            return
        for colour, weight in split.items():
            if weight > 0 and self._get(PLURAL, render.isvc_name(service, colour, self.mode)) is None:
                raise Conflict(
                    f"cannot send {weight}% of {service} to {colour}: it is not deployed",
                    hint=f"apply {colour} and wait until it is ready before routing traffic to it",
                )
        name = httproute.route_name(service)
        current = self._get(ROUTE_PLURAL, name)
        self._check_managed(current)
        mirror = httproute.mirror_of(current, service) if current is not None else None
        route = httproute.render_http_route(
            service=service, weights=split, options=self.options, mirror=mirror
        )
        if current is not None and httproute.weights_of(current, service) == httproute.check_weights(split):
            return  # already in force
        self._write(route, current)

    # -- shadow releases (release.shadow.Mirroring) ---------------------------------------------------
    def mirror_support(self) -> str | None:
        if self.mode is DeploymentMode.knative:
            return (
                "KServe's Knative (Serverless) mode has no request mirroring (its traffic split is "
                "canaryTrafficPercent only); serve in Standard mode, where the Gateway API HTTPRoute "
                "RequestMirror filter does it"
            )
        return None

    def set_mirror(self, service: str, colour: str, percent: int) -> None:
        """Copy ``percent`` % of production requests to ``colour`` (HTTPRoute RequestMirror)."""
        self._colour_check(colour)
        if why := self.mirror_support():
            raise MlctlError(f"cannot mirror {service}: {why}", hint="use --strategy canary in Knative mode")
        if self._get(PLURAL, render.isvc_name(service, colour, self.mode)) is None:
            raise Conflict(
                f"cannot mirror {service} to {colour}: it is not deployed",
                hint=f"apply {colour} and wait until it is ready before mirroring to it",
            )
        self._write_mirror(service, (colour, int(percent)))

    def clear_mirror(self, service: str) -> None:
        if self.mirror_support() is None:
            self._write_mirror(service, None)

    def mirror(self, service: str) -> dict[str, Any] | None:
        if self.mirror_support() is not None:
            return None
        route = self._get(ROUTE_PLURAL, httproute.route_name(service))
        found = httproute.mirror_of(route, service) if route is not None else None
        return None if found is None else {"colour": str(found[0]), "percent": found[1]}

    def _write_mirror(self, service: str, mirror: tuple[str, int] | None) -> None:
        current = self._get(ROUTE_PLURAL, httproute.route_name(service))
        if current is None:
            if mirror is None:
                return
            raise Conflict(f"{service} has no HTTPRoute to mirror", hint="release a first version")
        self._check_managed(current)
        found = httproute.mirror_of(current, service)
        in_force = None if found is None else (str(found[0]), found[1])
        if in_force == (None if mirror is None else (str(mirror[0]), int(mirror[1]))):
            return  # already in force
        weights: dict[str, int] = {str(c): w for c, w in httproute.weights_of(current, service).items()}
        route = httproute.render_http_route(
            service=service, weights=weights, options=self.options, mirror=mirror
        )
        self._write(route, current)

    def _set_traffic_knative(self, service: str, split: dict[str, int]) -> None:
        obj = self._get(PLURAL, service)
        colours = self._knative_colours(obj)
        if obj is None or not colours:
            raise Conflict(f"{service} is not deployed", hint="apply a colour first")
        for colour, weight in split.items():
            if weight > 0 and colour not in colours:
                raise Conflict(
                    f"cannot send {weight}% of {service} to {colour}: no routable revision serves it "
                    "(Knative retires the previous revision once the new one takes 100%)",
                    hint=f"re-apply {colour} (a redeploy), wait until it is ready, then move traffic",
                )
        if self._knative_weights(obj) == {c: split.get(c, 0) for c in colours}:
            return
        latest = self._knative_latest(obj)
        if latest is None:
            raise Conflict(f"{service} has no candidate revision recorded", hint="apply a colour first")
        percent = split.get(latest, 0)
        if percent == 100:
            # Promotion: drop the field; KServe rolls the latest revision out and retires the old one.
            patch: dict[str, Any] = {
                "metadata": {
                    "annotations": {ANNOTATION_COLOURS: self._colours_json({latest: colours[latest]})}
                },
                "spec": {"predictor": {"canaryTrafficPercent": None}},
            }
        else:
            patch = {"spec": {"predictor": {"canaryTrafficPercent": percent}}}
        self._patch(PLURAL, service, patch)

    # -- Driver: delete, endpoints, metrics, records ---------------------------------------------------
    def delete(self, service: str, colour: str) -> None:
        self._colour_check(colour)
        if self.traffic(service).get(colour, 0) > 0:
            raise Conflict(
                f"{service}/{colour} still receives traffic; it cannot be deleted",
                hint=f"move all traffic to {other_colour(colour)} first",
            )
        if self.mode is DeploymentMode.standard:
            self._delete(PLURAL, render.isvc_name(service, colour, self.mode))
            if not self.deployed(service):
                self._delete(ROUTE_PLURAL, httproute.route_name(service))
            return
        obj = self._get(PLURAL, service)
        colours = self._knative_colours(obj)
        if obj is None or colour not in colours:
            return
        rest = {c: d for c, d in colours.items() if c != colour}
        if not rest:
            self._delete(PLURAL, service)
            return
        stable = next(iter(rest))
        if self._knative_latest(obj) == colour:
            # Dropping a candidate revision means serving the stable spec again (a new revision
            # of the same model, taking over from the one that has the traffic now).
            new = self._render(
                service, None, rest[stable], annotations=self._knative_annotations(rest, stable)
            )
            self._write(new, obj)
        else:
            self._patch(
                PLURAL, service, {"metadata": {"annotations": {ANNOTATION_COLOURS: self._colours_json(rest)}}}
            )

    def endpoint(self, service: str, colour: str | None = None) -> str:
        if colour is None:
            if self.options.hostnames:
                return f"https://{self.options.hostnames[0]}"
            name = service if self.mode is DeploymentMode.knative else None
            obj = self._get(PLURAL, name) if name else None
            url = ((obj or {}).get("status") or {}).get("url")
            if url:
                return str(url)
            raise MlctlError(
                f"{service} has no external address yet",
                hint="set ServingOptions.hostnames (the HTTPRoute host), or wait for KServe's status.url",
            )
        self._colour_check(colour)
        if self.mode is DeploymentMode.knative:
            obj = self._get(PLURAL, service)
            tag = "latest" if colour == self._knative_latest(obj) else "prev"
            predictor = (((obj or {}).get("status") or {}).get("components") or {}).get("predictor") or {}
            for target in predictor.get("traffic") or []:
                if target.get("tag") == tag and target.get("url"):
                    return str(target["url"])
            url = ((obj or {}).get("status") or {}).get("url")
            if url and tag == "latest":
                return str(url)
            raise MlctlError(
                f"{service}/{colour} has no tagged URL yet",
                hint="KServe reports it once the revision is ready (tag routing is on for every release)",
            )
        name = render.isvc_name(service, colour, self.mode)
        obj = self._get(PLURAL, name)
        url = ((obj or {}).get("status") or {}).get("url")
        # Inside the cluster the predictor Service always answers, even before an external host exists.
        return (
            str(url)
            if url
            else f"http://{render.predictor_service_name(name)}.{self.namespace}.svc.cluster.local"
        )

    def metrics_source(self, service: str, colour: str) -> MetricsSource:
        self._colour_check(colour)
        if self.mode is DeploymentMode.knative:
            obj = self._get(PLURAL, service)
            predictor = (((obj or {}).get("status") or {}).get("components") or {}).get("predictor") or {}
            key = (
                "latestCreatedRevision" if colour == self._knative_latest(obj) else "latestRolledoutRevision"
            )
            revision = predictor.get(key) or f"{service}-predictor"
            pods = f"{revision}-deployment-.*"
        else:
            pods = f"{render.predictor_service_name(render.isvc_name(service, colour, self.mode))}-.*"
        return MetricsSource(
            kind="prometheus-api",
            url=self.prometheus_url,
            selector=f'namespace="{self.namespace}",pod=~"{pods}"',
        )

    def deployed(self, service: str) -> dict[str, Deployment]:
        if self.mode is DeploymentMode.knative:
            return self._knative_colours(self._get(PLURAL, service))
        out: dict[str, Deployment] = {}
        for colour in COLOURS:
            obj = self._get(PLURAL, render.isvc_name(service, colour, self.mode))
            dep = self._deployment_of(obj) if obj is not None else None
            if dep is not None:
                out[colour] = dep
        return out

    # -- records on the objects ---------------------------------------------------------------------------
    @staticmethod
    def _deployment_of(obj: dict[str, Any]) -> Deployment | None:
        raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(naming.ANNOTATION_DEPLOYMENT)
        if not raw:
            return None
        try:
            return Deployment.from_dict(json.loads(raw))
        except (TypeError, ValueError, KeyError):
            return None

    @staticmethod
    def _colours_json(colours: dict[str, Deployment]) -> str:
        return json.dumps({c: d.to_dict() for c, d in sorted(colours.items())}, sort_keys=True)

    def _knative_annotations(self, colours: dict[str, Deployment], latest: str) -> dict[str, str]:
        return {
            ANNOTATION_COLOURS: self._colours_json(colours),
            ANNOTATION_LATEST: latest,
            naming.ANNOTATION_DEPLOYMENT: json.dumps(colours[latest].to_dict(), sort_keys=True),
        }

    @staticmethod
    def _knative_colours(obj: dict[str, Any] | None) -> dict[str, Deployment]:
        raw = (((obj or {}).get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_COLOURS)
        if not raw:
            return {}
        try:
            return {c: Deployment.from_dict(d) for c, d in json.loads(raw).items() if c in COLOURS}
        except (TypeError, ValueError, KeyError):
            return {}

    @staticmethod
    def _knative_latest(obj: dict[str, Any] | None) -> str | None:
        value = (((obj or {}).get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_LATEST)
        return value if value in COLOURS else None

    def _knative_weights(self, obj: dict[str, Any] | None) -> dict[str, int]:
        colours = self._knative_colours(obj)
        latest = self._knative_latest(obj)
        if obj is None or not colours or latest is None:
            return {}
        if len(colours) == 1:
            return {next(iter(colours)): 100}
        percent = (obj.get("spec") or {}).get("predictor", {}).get("canaryTrafficPercent")
        share = 100 if percent is None else int(percent)
        return {latest: share, other_colour(latest): 100 - share}


def driver_for_environment(env: Environment) -> KubernetesDriver:
    """The driver for a cluster environment, set up from the ``MLCTL_KUBECONFIG``, ``MLCTL_KUBE_CONTEXT``,
    ``MLCTL_KSERVE_NAMESPACE``, ``MLCTL_KSERVE_MODE``, ``MLCTL_SERVING_HOSTNAME``, ``MLCTL_GPU_POOL`` and
    ``MLCTL_PROMETHEUS_URL`` settings until the blueprint describes serving (docs/kubernetes.md)."""
    s = settings.current()
    options = ServingOptions(
        namespace=s.kserve_namespace or ServingOptions.namespace,
        mode=parse_mode(s.kserve_mode or DeploymentMode.standard),
        gpu_pool=s.gpu_pool,
        hostnames=(s.serving_hostname,) if s.serving_hostname else (),
    )
    return KubernetesDriver(
        env,
        options=options,
        kubeconfig=s.kubeconfig,  # else $KUBECONFIG / ~/.kube/config / in-cluster
        context=s.kube_context,
        prometheus_url=s.prometheus_url or DEFAULT_PROMETHEUS,
    )
