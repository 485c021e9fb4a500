"""Knative mode (Serverless): one InferenceService ``<service>``; a release is a new revision.

The candidate colour is the latest revision, the other colour the last rolled-out one, and the
split is ``spec.predictor.canaryTrafficPercent``; tag routing gives the candidate its own URL for
smoke tests. When the candidate takes 100 % KServe retires the previous revision, so switching
back after that is a redeploy of the old colour (``apply``), not a weight change; ``deployed()``
then lists only the colour that is still routable, which is how the release engine knows.

Which colour each revision serves is bookkept in annotations on the one InferenceService
(``ANNOTATION_COLOURS``: the routable colours' ``Deployment``; ``ANNOTATION_LATEST``: the colour of
the latest revision), so a new mlctl process reads the cluster, not local state. Knative has no
request mirroring: shadow releases are refused plainly.
"""

from __future__ import annotations

import json
from typing import Any, Final

from control_plane.drivers.base import COLOURS, Deployment, Readiness, other_colour
from control_plane.errors import Conflict, MlctlError
from control_plane.kserve import naming
from control_plane.kserve.cluster import PLURAL, Cluster, isvc_readiness, predictor_status, same, status
from control_plane.kserve.model import DeploymentMode

ANNOTATION_COLOURS: Final = f"{naming.PREFIX}/colours"  # {colour: Deployment} of routable colours
ANNOTATION_LATEST: Final = f"{naming.PREFIX}/latest-colour"  # the colour in the latest revision

NO_MIRROR: Final = (
    "KServe's Knative (Serverless) mode has no request mirroring (its traffic split is "
    "canaryTrafficPercent only); serve in Standard mode, where the Gateway API HTTPRoute "
    "RequestMirror filter does it"
)


def _annotations(obj: dict[str, Any] | None) -> dict[str, str]:
    return dict(((obj or {}).get("metadata") or {}).get("annotations") or {})


def colours_of(obj: dict[str, Any] | None) -> dict[str, Deployment]:
    raw = _annotations(obj).get(ANNOTATION_COLOURS)
    if not raw:
        return {}
    try:
        return {c: Deployment.from_dict(d) for c, d in json.loads(raw).items() if c in COLOURS}
    except (TypeError, ValueError, KeyError):
        return {}


def latest_of(obj: dict[str, Any] | None) -> str | None:
    value = _annotations(obj).get(ANNOTATION_LATEST)
    return value if value in COLOURS else None


def weights_of(obj: dict[str, Any] | None) -> dict[str, int]:
    colours = colours_of(obj)
    latest = latest_of(obj)
    if obj is None or not colours or latest is None:
        return {}
    if len(colours) == 1:
        return {next(iter(colours)): 100}
    percent = (obj.get("spec") or {}).get("predictor", {}).get("canaryTrafficPercent")
    share = 100 if percent is None else int(percent)
    return {latest: share, other_colour(latest): 100 - share}


def _colours_json(colours: dict[str, Deployment]) -> str:
    return json.dumps({c: d.to_dict() for c, d in sorted(colours.items())}, sort_keys=True)


def _bookkeeping(colours: dict[str, Deployment], latest: str) -> dict[str, str]:
    return {
        ANNOTATION_COLOURS: _colours_json(colours),
        ANNOTATION_LATEST: latest,
        naming.ANNOTATION_DEPLOYMENT: json.dumps(colours[latest].to_dict(), sort_keys=True),
    }


class KnativeMode:
    """One InferenceService, colours as revisions (see ``kserve.modes.ServingMode``)."""

    mode = DeploymentMode.knative

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def _get(self, service: str) -> dict[str, Any] | None:
        return self.cluster.get(PLURAL, service)

    # -- deploy and check ------------------------------------------------------------------------
    def apply(self, service: str, colour: str, deployment: Deployment) -> None:
        current = self._get(service)
        self.cluster.check_managed(current)
        colours = colours_of(current)
        if current is not None and latest_of(current) == colour and same(colours.get(colour), deployment):
            return
        weights = weights_of(current)
        if current is not None and weights.get(colour, 0) > 0:
            raise Conflict(
                f"{service}/{colour} still receives traffic; it cannot be replaced",
                hint=f"move traffic to {other_colour(colour)} first (set_traffic), then apply",
            )
        # The other colour keeps its revision (and all the traffic) while the new one starts at 0 %.
        keep = {c: d for c, d in colours.items() if c != colour and weights.get(c, 0) > 0}
        new_colours = {**keep, colour: deployment}
        obj = self.cluster.render(
            service,
            None,
            deployment,
            canary_traffic_percent=0 if keep else None,
            annotations=_bookkeeping(new_colours, colour),
        )
        self.cluster.write(obj, current)

    def ready(self, service: str, colour: str) -> Readiness:
        obj = self._get(service)
        if obj is None or colour not in colours_of(obj):
            return Readiness(False, f"{service}/{colour} is not deployed (no routable revision)", failed=True)
        predictor = predictor_status(obj)
        if colour == latest_of(obj):
            base = isvc_readiness(obj)
            created, ready_rev = predictor.get("latestCreatedRevision"), predictor.get("latestReadyRevision")
            if base.ready and created != ready_rev:
                return Readiness(False, f"{service}: revision {created} is not ready yet (ready: {ready_rev})")
            return base
        if predictor.get("latestRolledoutRevision"):
            return Readiness(True, f"{service}/{colour}: serving revision {predictor['latestRolledoutRevision']}")
        return Readiness(False, f"{service}/{colour}: no rolled-out revision reported yet")

    def deployed(self, service: str) -> dict[str, Deployment]:
        return colours_of(self._get(service))

    def delete(self, service: str, colour: str) -> None:
        obj = self._get(service)
        colours = colours_of(obj)
        if obj is None or colour not in colours:
            return
        rest = {c: d for c, d in colours.items() if c != colour}
        if not rest:
            self.cluster.delete(PLURAL, service)
            return
        stable = next(iter(rest))
        if latest_of(obj) == colour:
            # Dropping a candidate revision means serving the stable spec again (a new revision
            # of the same model, taking over from the one that has the traffic now).
            new = self.cluster.render(service, None, rest[stable], annotations=_bookkeeping(rest, stable))
            self.cluster.write(new, obj)
        else:
            self.cluster.patch(PLURAL, service, {"metadata": {"annotations": {ANNOTATION_COLOURS: _colours_json(rest)}}})

    # -- traffic ----------------------------------------------------------------------------------
    def traffic(self, service: str) -> dict[str, int]:
        return weights_of(self._get(service))

    def set_traffic(self, service: str, split: dict[str, int]) -> None:
        obj = self._get(service)
        colours = colours_of(obj)
        if obj is None or not colours:
            raise Conflict(f"{service} is not deployed", hint="apply a colour first")
        for colour, weight in split.items():
            if weight > 0 and colour not in colours:
                raise Conflict(
                    f"cannot send {weight}% of {service} to {colour}: no routable revision serves it "
                    "(Knative retires the previous revision once the new one takes 100%)",
                    hint=f"re-apply {colour} (a redeploy), wait until it is ready, then move traffic",
                )
        if weights_of(obj) == {c: split.get(c, 0) for c in colours}:
            return
        latest = latest_of(obj)
        if latest is None:
            raise Conflict(f"{service} has no candidate revision recorded", hint="apply a colour first")
        percent = split.get(latest, 0)
        if percent == 100:
            # Promotion: drop the field; KServe rolls the latest revision out and retires the old one.
            patch: dict[str, Any] = {
                "metadata": {"annotations": {ANNOTATION_COLOURS: _colours_json({latest: colours[latest]})}},
                "spec": {"predictor": {"canaryTrafficPercent": None}},
            }
        else:
            patch = {"spec": {"predictor": {"canaryTrafficPercent": percent}}}
        self.cluster.patch(PLURAL, service, patch)

    def remove_route(self, service: str) -> None:
        """The InferenceService's Knative route is the only route: delete the InferenceService
        (every revision), so nothing answers the service's clients."""
        obj = self._get(service)
        if obj is None:
            return
        self.cluster.check_managed(obj)
        self.cluster.delete(PLURAL, service)

    # -- addresses and metrics --------------------------------------------------------------------------
    def external_url(self, service: str) -> str | None:
        url = status(self._get(service)).get("url")
        return str(url) if url else None

    def colour_endpoint(self, service: str, colour: str) -> str:
        obj = self._get(service)
        tag = "latest" if colour == latest_of(obj) else "prev"
        for target in predictor_status(obj).get("traffic") or []:
            if target.get("tag") == tag and target.get("url"):
                return str(target["url"])
        url = status(obj).get("url")
        if url and tag == "latest":
            return str(url)
        raise MlctlError(
            f"{service}/{colour} has no tagged URL yet",
            hint="KServe reports it once the revision is ready (tag routing is on for every release)",
        )

    def metrics_pods(self, service: str, colour: str) -> str:
        obj = self._get(service)
        key = "latestCreatedRevision" if colour == latest_of(obj) else "latestRolledoutRevision"
        revision = predictor_status(obj).get(key) or f"{service}-predictor"
        return f"{revision}-deployment-.*"

    # -- shadow releases: not in this mode ---------------------------------------------------------------
    def mirror_support(self) -> str | None:
        return NO_MIRROR

    def set_mirror(self, service: str, colour: str, percent: int) -> None:
        raise MlctlError(f"cannot mirror {service}: {NO_MIRROR}", hint="use --strategy canary in Knative mode")

    def clear_mirror(self, service: str) -> None:
        return None

    def mirror(self, service: str) -> dict[str, Any] | None:
        return None
