"""The Driver port: what the release engine needs from a serving runtime, and nothing more.

A *service* (e.g. ``digits``) is what clients call through one stable endpoint. Each service has
up to two *colours* (``blue``, ``green``): two complete, independently ready deployments of a
model version. The release engine deploys the candidate on the idle colour, checks it, then moves
traffic between colours with ``set_traffic``. Drivers are dumb on purpose: no strategy, no
analysis and no gates live here, so the local runtime and Kubernetes behave the same.

Implementations:

- ``control_plane.drivers.local.LocalDriver``: a KServe model server process per colour and an
  nginx + Lua gateway (TLS, keep-alive, switches without reload; the embedded default).
- ``control_plane.kserve`` (Kubernetes): one InferenceService per colour; weights through
  ``canaryTrafficPercent`` (Knative mode) or Gateway API HTTPRoute weights (Standard mode).

Contract (every method is idempotent, so a release that crashed can call it again):

``apply(service, colour, deployment)``
    Create or replace ``colour`` of ``service`` with ``deployment``. Must not change traffic.
    Returns at once; readiness comes later.
``ready(service, colour) -> Readiness``
    Whether the colour serves the V2 protocol (server ready *and* model loaded). ``failed`` is
    True when it can never become ready without a new ``apply`` (crashed, bad model).
``set_traffic(service, weights)``
    Percentages per colour summing to 100 (e.g. ``{"blue": 90, "green": 10}``). Returns once
    the runtime has taken the change (the gateway's route written, the object patched): new requests follow
    the new weights; requests in flight finish where they started.
``traffic(service) -> dict[str, int]``
    The weights in force (``{}`` when the service has no route yet).
``delete(service, colour)``
    Remove the colour. Refuses (``Conflict``) while it still has a non-zero weight.
``endpoint(service, colour=None) -> str``
    Base URL for V2 calls: the gateway when ``colour`` is None, else that colour alone
    (locally: the gateway's TLS route pinned to it; smoke tests talk to green before it gets
    any traffic).
``metrics_source(service, colour) -> MetricsSource``
    Where the analysis reads request counts, errors and latency for one colour.
``deployed(service) -> dict[str, Deployment]``
    What each existing colour runs (the labels/records written by ``apply``).
``remove_route(service)``
    Take the service's client-facing route down: from now on its clients are refused rather
    than served by any colour, and ``traffic(service)`` is ``{}``. The engine calls it when a
    first release fails after taking traffic (there is no previous colour to go back to), before
    it deletes the candidate. A no-op when there is no route.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from control_plane.errors import MlctlError

COLOURS: tuple[str, str] = ("blue", "green")


def other_colour(colour: str) -> str:
    return "green" if colour == "blue" else "blue"


@dataclass(frozen=True)
class Resources:
    """What one replica asks for. ``gpus`` > 0 puts it on the blueprint's GPU pool (cluster only)."""

    cpu: str = "1"
    memory: str = "2Gi"
    gpus: int = 0


@dataclass(frozen=True)
class Deployment:
    """One model version as a serving runtime needs it, plus what identifies the release.

    ``storage_uri`` is what the runtime loads (``s3://bucket/prefix`` in a cluster, ``file://``
    locally); ``local_path`` is the verified, materialized directory holding the exact bytes
    (the local driver serves from it). ``digest`` is the model version's manifest digest.
    """

    service: str
    model_name: str
    model_version: str
    digest: str
    release_id: str
    storage_uri: str
    model_format: Literal["onnx", "tensorrt"] = "onnx"
    local_path: Path | None = None
    resources: Resources = field(default_factory=Resources)
    environment: str = "uae-local"

    def labels(self) -> dict[str, str]:
        """Labels that identify what runs (Kubernetes labels; the local driver's records)."""
        return {
            "mlctl.io/service": self.service,
            "mlctl.io/model": self.model_name,
            "mlctl.io/version": self.model_version,
            "mlctl.io/digest": self.digest.removeprefix("sha256:")[:63],
            "mlctl.io/release": self.release_id,
        }

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["local_path"] = str(self.local_path) if self.local_path else None
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Deployment:
        data = dict(data)
        data["resources"] = Resources(**data.get("resources") or {})
        data["local_path"] = Path(data["local_path"]) if data.get("local_path") else None
        return cls(**data)


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str = ""
    failed: bool = False  # will never become ready without a new apply


@dataclass(frozen=True)
class MetricsSource:
    """Where one colour's request metrics are read.

    ``kind == "prometheus-text"``: ``url`` is a ``/metrics`` endpoint in the Prometheus text
    format exposing ``mlctl_requests_total{code}`` and the histogram
    ``mlctl_request_duration_seconds`` (the local model servers).
    ``kind == "prometheus-api"``: ``url`` is a Prometheus server's HTTP API base and
    ``selector`` the label matcher for the colour's series (cluster).
    """

    kind: Literal["prometheus-text", "prometheus-api"]
    url: str
    selector: str = ""


@runtime_checkable
class Driver(Protocol):
    name: str

    def apply(self, service: str, colour: str, deployment: Deployment) -> None: ...

    def ready(self, service: str, colour: str) -> Readiness: ...

    def set_traffic(self, service: str, weights: dict[str, int]) -> None: ...

    def traffic(self, service: str) -> dict[str, int]: ...

    def delete(self, service: str, colour: str) -> None: ...

    def endpoint(self, service: str, colour: str | None = None) -> str: ...

    def metrics_source(self, service: str, colour: str) -> MetricsSource: ...

    def deployed(self, service: str) -> dict[str, Deployment]: ...

    def remove_route(self, service: str) -> None: ...


def check_weights(weights: dict[str, int]) -> dict[str, int]:
    """Validate a traffic split (shared by drivers so they refuse the same things)."""
    unknown = set(weights) - set(COLOURS)
    if unknown:
        raise MlctlError(
            f"unknown colour(s) {sorted(unknown)} in traffic weights", hint=f"use {', '.join(COLOURS)}"
        )
    if any(w < 0 or w > 100 for w in weights.values()) or sum(weights.values()) != 100:
        raise MlctlError(
            f"traffic weights {weights} must be 0..100 and sum to 100", hint='e.g. {"blue": 90, "green": 10}'
        )
    return {c: int(w) for c, w in weights.items()}
