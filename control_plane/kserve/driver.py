"""The Kubernetes driver: KServe InferenceServices on the environment's cluster (``drivers.base.Driver``).

A facade over two serving modes (``kserve.modes``), chosen by ``ServingOptions.mode``; this module
checks what the contract says for both and delegates the rest:

**Standard** (``kserve.standard``, KServe's default, plain Deployments): one InferenceService per colour
(``<service>-blue``, ``<service>-green``) and one Gateway API HTTPRoute ``<service>`` whose weighted
backendRefs split production traffic between the colours' predictor Services. Switching and
switching back are one HTTPRoute write each, so rollback is instant while the old colour is up.

**Knative** (``kserve.knative``, Serverless): one InferenceService ``<service>``; a release is a new revision.
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

from pathlib import Path
from typing import Any, Final

from kubernetes import client as k8s
from kubernetes import config as k8s_config

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
from control_plane.kserve import crds
from control_plane.kserve.cluster import (  # noqa: F401  (re-exported: the driver's names before the split)
    GROUP,
    PLURAL,
    ROUTE_GROUP,
    ROUTE_PLURAL,
    ROUTE_VERSION,
    VERSION,
    Cluster,
    served_model,
)
from control_plane.kserve.knative import ANNOTATION_COLOURS, ANNOTATION_LATEST  # noqa: F401  (re-exported)
from control_plane.kserve.model import DeploymentMode, ServingOptions, parse_mode
from control_plane.kserve.modes import ServingMode, for_mode

DEFAULT_PROMETHEUS: Final = "http://prometheus-operated.monitoring.svc:9090"


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
        self.serving: ServingMode = for_mode(
            self.mode, Cluster(self.objects, env, self.options, validate=self.validate)
        )

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

    @staticmethod
    def _colour_check(colour: str) -> None:
        if colour not in COLOURS:
            raise MlctlError(f"unknown colour {colour!r}", hint=f"use one of {', '.join(COLOURS)}")

    # -- Driver -----------------------------------------------------------------------------------
    def apply(self, service: str, colour: str, deployment: Deployment) -> None:
        self._colour_check(colour)
        self.serving.apply(service, colour, deployment)

    def ready(self, service: str, colour: str) -> Readiness:
        self._colour_check(colour)
        return self.serving.ready(service, colour)

    def traffic(self, service: str) -> dict[str, int]:
        return self.serving.traffic(service)

    def set_traffic(self, service: str, weights: dict[str, int]) -> None:
        self.serving.set_traffic(service, check_weights(weights))

    def remove_route(self, service: str) -> None:
        self.serving.remove_route(service)

    def delete(self, service: str, colour: str) -> None:
        self._colour_check(colour)
        if self.traffic(service).get(colour, 0) > 0:
            raise Conflict(
                f"{service}/{colour} still receives traffic; it cannot be deleted",
                hint=f"move all traffic to {other_colour(colour)} first",
            )
        self.serving.delete(service, colour)

    def endpoint(self, service: str, colour: str | None = None) -> str:
        if colour is not None:
            self._colour_check(colour)
            return self.serving.colour_endpoint(service, colour)
        if self.options.hostnames:
            return f"https://{self.options.hostnames[0]}"
        url = self.serving.external_url(service)
        if url:
            return url
        raise MlctlError(
            f"{service} has no external address yet",
            hint="set ServingOptions.hostnames (the HTTPRoute host), or wait for KServe's status.url",
        )

    def metrics_source(self, service: str, colour: str) -> MetricsSource:
        self._colour_check(colour)
        pods = self.serving.metrics_pods(service, colour)
        return MetricsSource(
            kind="prometheus-api",
            url=self.prometheus_url,
            selector=f'namespace="{self.namespace}",pod=~"{pods}"',
        )

    def deployed(self, service: str) -> dict[str, Deployment]:
        return self.serving.deployed(service)

    # -- shadow releases (release.shadow.Mirroring) ---------------------------------------------------
    def mirror_support(self) -> str | None:
        return self.serving.mirror_support()

    def set_mirror(self, service: str, colour: str, percent: int) -> None:
        """Copy ``percent`` % of production requests to ``colour`` (HTTPRoute RequestMirror)."""
        self._colour_check(colour)
        if why := self.mirror_support():
            raise MlctlError(f"cannot mirror {service}: {why}", hint="use --strategy canary in Knative mode")
        self.serving.set_mirror(service, colour, percent)

    def clear_mirror(self, service: str) -> None:
        self.serving.clear_mirror(service)

    def mirror(self, service: str) -> dict[str, Any] | None:
        return self.serving.mirror(service)


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
