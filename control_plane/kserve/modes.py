"""The two ways KServe serves a service, behind one ``KubernetesDriver``: a ``ServingMode`` each.

``StandardMode`` (``kserve.standard``): an InferenceService per colour, traffic in an HTTPRoute.
``KnativeMode`` (``kserve.knative``): one InferenceService, colours as revisions, traffic in
``canaryTrafficPercent``. The facade checks colours and weights and keeps the contract's shared
rules (no delete while a colour has traffic, the configured external host); a mode only knows its
objects. Colours and weights reach a mode already validated.
"""

from __future__ import annotations

from typing import Any, Protocol

from control_plane.drivers.base import Deployment, Readiness
from control_plane.kserve.cluster import Cluster
from control_plane.kserve.knative import KnativeMode
from control_plane.kserve.model import DeploymentMode
from control_plane.kserve.standard import StandardMode


class ServingMode(Protocol):
    mode: DeploymentMode

    def apply(self, service: str, colour: str, deployment: Deployment) -> None: ...

    def ready(self, service: str, colour: str) -> Readiness: ...

    def deployed(self, service: str) -> dict[str, Deployment]: ...

    def delete(self, service: str, colour: str) -> None: ...

    def traffic(self, service: str) -> dict[str, int]: ...

    def set_traffic(self, service: str, split: dict[str, int]) -> None: ...

    def remove_route(self, service: str) -> None: ...

    def external_url(self, service: str) -> str | None:
        """KServe's own external URL for the service, when the mode has one."""
        ...

    def colour_endpoint(self, service: str, colour: str) -> str: ...

    def metrics_pods(self, service: str, colour: str) -> str:
        """The pod-name regex of the colour's predictor (its Prometheus series)."""
        ...

    def mirror_support(self) -> str | None: ...

    def set_mirror(self, service: str, colour: str, percent: int) -> None: ...

    def clear_mirror(self, service: str) -> None: ...

    def mirror(self, service: str) -> dict[str, Any] | None: ...


def for_mode(mode: DeploymentMode, cluster: Cluster) -> ServingMode:
    return KnativeMode(cluster) if mode is DeploymentMode.knative else StandardMode(cluster)
