"""The Gateway API HTTPRoute that splits a service's traffic between its blue and green
InferenceServices in KServe's Standard mode (KServe has no traffic split of its own there).

Besides the weighted default rule, each colour gets a rule matching the ``x-mlops-colour`` header,
so smoke tests reach the candidate before it takes any production traffic (the Standard-mode
counterpart of Knative's tag routing).

A shadow release adds a ``RequestMirror`` filter (Gateway API, "Support: Extended") to the
weighted rule: the gateway copies ``percent`` % of production requests to the candidate's
predictor Service and discards its answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from control_plane.errors import MlctlError
from control_plane.kserve import naming
from control_plane.kserve.model import Colour, DeploymentMode, ServingOptions
from control_plane.kserve.render import isvc_name, predictor_service_name

API_VERSION: Final = "gateway.networking.k8s.io/v1"
KIND: Final = "HTTPRoute"
COLOUR_HEADER: Final = "x-mlops-colour"
PREDICTOR_PORT: Final = 80  # KServe's predictor Service listens on 80 and forwards to the server's 8080


def route_name(service: str) -> str:
    return naming.check_service_name(service)


def check_weights(weights: Mapping[Colour | str, int]) -> dict[Colour, int]:
    """Weights in percent per colour; both colours present and summing to 100."""
    out = {Colour(c): int(w) for c, w in weights.items()}
    for colour in Colour:
        out.setdefault(colour, 0)
    if any(not 0 <= w <= 100 for w in out.values()) or sum(out.values()) != 100:
        raise MlctlError(
            f"traffic weights {dict((str(c), w) for c, w in out.items())} must be 0..100 and sum to 100",
            hint="give the share of each colour in percent, e.g. blue=90 green=10",
        )
    return out


def _backend(service: str, colour: Colour, weight: int) -> dict[str, Any]:
    return {
        "group": "",
        "kind": "Service",
        "name": predictor_service_name(isvc_name(service, colour, DeploymentMode.standard)),
        "port": PREDICTOR_PORT,
        "weight": weight,
    }


def render_http_route(
    *,
    service: str,
    weights: Mapping[Colour | str, int],
    options: ServingOptions | None = None,
    labels: Mapping[str, str] | None = None,
    mirror: tuple[Colour | str, int] | None = None,
) -> dict[str, Any]:
    """The HTTPRoute named after ``service``, sending ``weights[colour]`` percent to each colour,
    and with ``mirror=(colour, percent)`` a copy of ``percent`` % of them to ``colour``."""
    opts = options or ServingOptions()
    split = check_weights(weights)
    name = route_name(service)
    meta_labels = {
        naming.LABEL_MANAGED_BY: naming.MANAGED_BY,
        naming.LABEL_SERVICE: service,
        **(labels or {}),
    }
    rules: list[dict[str, Any]] = [
        {
            "matches": [
                {
                    "path": {"type": "PathPrefix", "value": "/"},
                    "headers": [{"type": "Exact", "name": COLOUR_HEADER, "value": str(colour)}],
                }
            ],
            "backendRefs": [_backend(service, colour, 1)],
        }
        for colour in Colour
    ]
    weighted: dict[str, Any] = {
        "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
        # A zero-weight backend stays listed: the route always names both colours, and a weight
        # change is a one-field patch that gateways apply without dropping connections.
        "backendRefs": [_backend(service, colour, split[colour]) for colour in Colour],
    }
    if mirror is not None:
        colour, percent = Colour(mirror[0]), int(mirror[1])
        if not 1 <= percent <= 100:
            raise MlctlError(f"mirror percent {percent} must be 1..100", hint="e.g. --mirror-percent 10")
        ref = _backend(service, colour, 0)
        ref.pop("weight")  # a mirror's backendRef is a BackendObjectReference: no weight
        weighted["filters"] = [
            {"type": "RequestMirror", "requestMirror": {"backendRef": ref, "percent": percent}}
        ]
    rules.append(weighted)
    spec: dict[str, Any] = {
        "parentRefs": [
            {
                "group": "gateway.networking.k8s.io",
                "kind": "Gateway",
                "name": opts.gateway_name,
                "namespace": opts.gateway_namespace,
            }
        ],
        "rules": rules,
    }
    if opts.hostnames:
        spec["hostnames"] = list(opts.hostnames)
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": opts.namespace, "labels": meta_labels},
        "spec": spec,
    }


def weights_of(route: Mapping[str, Any], service: str) -> dict[Colour, int]:
    """Read the production split back from a route rendered by :func:`render_http_route`."""
    by_backend = {_backend(service, c, 0)["name"]: c for c in Colour}
    for rule in route.get("spec", {}).get("rules", []):
        matches = rule.get("matches") or []
        if any(m.get("headers") for m in matches):
            continue
        out = {c: 0 for c in Colour}
        for ref in rule.get("backendRefs", []):
            colour = by_backend.get(ref.get("name"))
            if colour is not None:
                out[colour] = int(ref.get("weight", 1))
        return out
    raise MlctlError(
        f"HTTPRoute {service} has no weighted rule",
        hint="re-apply the route with `mlctl release resume`, or delete it and release again",
    )


def mirror_of(route: Mapping[str, Any], service: str) -> tuple[Colour, int] | None:
    """``(colour, percent)`` of the RequestMirror on the weighted rule, or None."""
    by_backend = {_backend(service, c, 0)["name"]: c for c in Colour}
    for rule in route.get("spec", {}).get("rules", []):
        if any(m.get("headers") for m in rule.get("matches") or []):
            continue
        for f in rule.get("filters") or []:
            if f.get("type") == "RequestMirror":
                rm = f.get("requestMirror") or {}
                colour = by_backend.get((rm.get("backendRef") or {}).get("name"))
                if colour is not None:
                    return colour, int(rm.get("percent", 100))
    return None
