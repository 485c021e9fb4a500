"""Kubernetes API failures as ``MlctlError``s that say what to do (never a client traceback)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import urllib3.exceptions
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from control_plane.errors import Conflict, InfraError, MlctlError, NotFound, PolicyViolation, ToolMissing


def _status(exc: ApiException) -> dict[str, Any]:
    try:
        body = json.loads(exc.body or "{}")
        return body if isinstance(body, dict) else {}
    except (TypeError, ValueError):
        return {}


def translate(exc: ApiException, what: str, *, namespace: str | None = None) -> MlctlError:
    """The ``MlctlError`` for an API error met while doing ``what`` (e.g. "create InferenceService x")."""
    status = _status(exc)
    code = int(exc.status or status.get("code") or 0)
    reason = str(status.get("reason") or exc.reason or "")
    message = str(status.get("message") or exc.reason or "no message")
    where = f" in namespace {namespace}" if namespace else ""
    if code == 401:
        return InfraError(
            f"{what}: the Kubernetes API refused our credentials ({message})",
            hint="refresh the kubeconfig, e.g. "
            "`aws eks update-kubeconfig --region me-central-1 --name CLUSTER`",
        )
    if code == 403:
        return PolicyViolation(
            f"{what}: forbidden by the cluster's RBAC{where} ({message})",
            hint="bind the mlctl deployer role: create/get/patch/update/delete on inferenceservices."
            f"serving.kserve.io and httproutes.gateway.networking.k8s.io{where}",
        )
    if code == 404 and "could not find the requested resource" in message:
        return ToolMissing(
            f"{what}: the cluster does not serve this resource ({message})",
            hint="install KServe 0.15+ (InferenceService CRD) and the Gateway API CRDs (HTTPRoute), "
            "or point --kubeconfig at the serving cluster",
        )
    if code == 404:
        return NotFound(
            f"{what}: not found{where} ({message})", hint="deploy it first, or check the service name"
        )
    if code == 409:
        return Conflict(
            f"{what}: conflicts with the object in the cluster ({message})",
            hint="someone else changed it at the same time; run the command again (it re-reads the object)",
        )
    if code in (400, 422):
        return MlctlError(
            f"{what}: rejected by the API server as invalid ({message})",
            hint="the cluster's KServe/Gateway API version may differ from the CRDs mlctl validates "
            "against (KSERVE_CRDS_DIR); compare with `kubectl explain inferenceservice.spec.predictor`",
        )
    if code == 429 or code >= 500:
        return InfraError(
            f"{what}: the Kubernetes API failed ({code} {reason}: {message})",
            hint="the API server is overloaded or unavailable; retry (`mlctl release resume` is safe)",
        )
    return InfraError(
        f"{what}: unexpected answer {code} {reason} ({message})", hint="see the cluster's API logs"
    )


@contextmanager
def api_call(what: str, *, namespace: str | None = None) -> Iterator[None]:
    """Run Kubernetes client calls, turning their failures into ``MlctlError``s."""
    try:
        yield
    except ApiException as exc:
        raise translate(exc, what, namespace=namespace) from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise InfraError(
            f"{what}: cannot reach the Kubernetes API ({exc})",
            hint="check the kubeconfig's server address and your network path (VPN, private endpoint)",
        ) from None
    except ConfigException as exc:
        raise InfraError(
            f"{what}: bad Kubernetes configuration ({exc})", hint="fix --kubeconfig / --context"
        ) from None
