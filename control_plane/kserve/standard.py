"""Standard mode (KServe's default, plain Deployments): one InferenceService per colour
(``<service>-blue``, ``<service>-green``) and one Gateway API HTTPRoute ``<service>`` whose weighted
backendRefs split production traffic between the colours' predictor Services. Switching and
switching back are one HTTPRoute write each, so rollback is instant while the old colour is up;
shadow releases mirror through the HTTPRoute's RequestMirror filter.
"""

from __future__ import annotations

import json
from typing import Any

from control_plane.drivers.base import COLOURS, Deployment, Readiness, other_colour
from control_plane.errors import Conflict
from control_plane.kserve import httproute, naming, render
from control_plane.kserve.cluster import (
    PLURAL,
    ROUTE_PLURAL,
    Cluster,
    deployment_of,
    isvc_readiness,
    same,
    status,
)
from control_plane.kserve.model import DeploymentMode


class StandardMode:
    """One InferenceService per colour, traffic in an HTTPRoute (see ``kserve.modes.ServingMode``)."""

    mode = DeploymentMode.standard

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def _isvc(self, service: str, colour: str) -> str:
        return render.isvc_name(service, colour, self.mode)

    def _route(self, service: str) -> dict[str, Any] | None:
        return self.cluster.get(ROUTE_PLURAL, httproute.route_name(service))

    # -- deploy and check ------------------------------------------------------------------------
    def apply(self, service: str, colour: str, deployment: Deployment) -> None:
        current = self.cluster.get(PLURAL, self._isvc(service, colour))
        self.cluster.check_managed(current)
        if current is not None and same(deployment_of(current), deployment):
            return  # exactly this is applied already: idempotent
        if current is not None and self.traffic(service).get(colour, 0) > 0:
            raise Conflict(
                f"{service}/{colour} still receives traffic; it cannot be replaced",
                hint=f"move traffic to {other_colour(colour)} first (set_traffic), then apply",
            )
        obj = self.cluster.render(
            service,
            colour,
            deployment,
            annotations={naming.ANNOTATION_DEPLOYMENT: json.dumps(deployment.to_dict(), sort_keys=True)},
        )
        self.cluster.write(obj, current)

    def ready(self, service: str, colour: str) -> Readiness:
        name = self._isvc(service, colour)
        obj = self.cluster.get(PLURAL, name)
        if obj is None:
            return Readiness(False, f"InferenceService {self.cluster.namespace}/{name} does not exist", failed=True)
        return isvc_readiness(obj)

    def deployed(self, service: str) -> dict[str, Deployment]:
        out: dict[str, Deployment] = {}
        for colour in COLOURS:
            obj = self.cluster.get(PLURAL, self._isvc(service, colour))
            dep = deployment_of(obj) if obj is not None else None
            if dep is not None:
                out[colour] = dep
        return out

    def delete(self, service: str, colour: str) -> None:
        self.cluster.delete(PLURAL, self._isvc(service, colour))
        if not self.deployed(service):
            self.cluster.delete(ROUTE_PLURAL, httproute.route_name(service))

    # -- traffic ----------------------------------------------------------------------------------
    def traffic(self, service: str) -> dict[str, int]:
        route = self._route(service)
        if route is None:
            return {}
        return {str(c): w for c, w in httproute.weights_of(route, service).items()}

    def set_traffic(self, service: str, split: dict[str, int]) -> None:
        for colour, weight in split.items():
            if weight > 0 and self.cluster.get(PLURAL, self._isvc(service, colour)) is None:
                raise Conflict(
                    f"cannot send {weight}% of {service} to {colour}: it is not deployed",
                    hint=f"apply {colour} and wait until it is ready before routing traffic to it",
                )
        current = self._route(service)
        self.cluster.check_managed(current)
        mirror = httproute.mirror_of(current, service) if current is not None else None
        route = httproute.render_http_route(
            service=service, weights=split, options=self.cluster.options, mirror=mirror
        )
        if current is not None and httproute.weights_of(current, service) == httproute.check_weights(split):
            return  # already in force
        self.cluster.write(route, current)

    def remove_route(self, service: str) -> None:
        """Delete the HTTPRoute: the gateway refuses the service's clients; the colours stay."""
        current = self._route(service)
        if current is None:
            return
        self.cluster.check_managed(current)
        self.cluster.delete(ROUTE_PLURAL, httproute.route_name(service))

    # -- addresses and metrics --------------------------------------------------------------------------
    def external_url(self, service: str) -> str | None:
        return None  # the HTTPRoute host (ServingOptions.hostnames) is the only external address

    def colour_endpoint(self, service: str, colour: str) -> str:
        name = self._isvc(service, colour)
        url = status(self.cluster.get(PLURAL, name)).get("url")
        # Inside the cluster the predictor Service always answers, even before an external host exists.
        return (
            str(url)
            if url
            else f"http://{render.predictor_service_name(name)}.{self.cluster.namespace}.svc.cluster.local"
        )

    def metrics_pods(self, service: str, colour: str) -> str:
        return f"{render.predictor_service_name(self._isvc(service, colour))}-.*"

    # -- shadow releases ---------------------------------------------------------------------------------
    def mirror_support(self) -> str | None:
        return None

    def set_mirror(self, service: str, colour: str, percent: int) -> None:
        if self.cluster.get(PLURAL, self._isvc(service, colour)) is None:
            raise Conflict(
                f"cannot mirror {service} to {colour}: it is not deployed",
                hint=f"apply {colour} and wait until it is ready before mirroring to it",
            )
        self._write_mirror(service, (colour, int(percent)))

    def clear_mirror(self, service: str) -> None:
        self._write_mirror(service, None)

    def mirror(self, service: str) -> dict[str, Any] | None:
        route = self._route(service)
        found = httproute.mirror_of(route, service) if route is not None else None
        return None if found is None else {"colour": str(found[0]), "percent": found[1]}

    def _write_mirror(self, service: str, mirror: tuple[str, int] | None) -> None:
        current = self._route(service)
        if current is None:
            if mirror is None:
                return
            raise Conflict(f"{service} has no HTTPRoute to mirror", hint="release a first version")
        self.cluster.check_managed(current)
        found = httproute.mirror_of(current, service)
        in_force = None if found is None else (str(found[0]), found[1])
        if in_force == (None if mirror is None else (str(mirror[0]), int(mirror[1]))):
            return  # already in force
        weights: dict[str, int] = {str(c): w for c, w in httproute.weights_of(current, service).items()}
        route = httproute.render_http_route(
            service=service, weights=weights, options=self.cluster.options, mirror=mirror
        )
        self.cluster.write(route, current)
