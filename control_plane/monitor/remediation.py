"""What happens after a drift check: audit it, emit it, and act as configured.

Remediation (``remediation`` in the drift config or ``--remediate``):

- ``none``: record and emit ``drift.checked`` only;
- ``alert``: also emit ``drift.detected`` (sinks turn it into pages/tickets);
- ``retrain``: alert, and emit ``retrain.required`` carrying the data set and feature pins of the
  model version that served the window (from the registry);
- ``rollback``: alert, and roll the service back to its previous version via the release engine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from control_plane import audit
from control_plane.errors import MlctlError
from control_plane.events import emit
from control_plane.monitor.drift import DriftReport
from control_plane.monitor.retrain import pins_dict
from control_plane.registry import get_version


def _audit(**kwargs: Any) -> None:
    audit.record(**kwargs)


def _registry_pins(model: str | None, version: str | None) -> dict[str, Any]:
    if not model or not version:
        return {
            "model": model,
            "version": version,
            "datasets": [],
            "features": [],
            "note": "the request log names no model version",
        }
    try:
        return pins_dict(get_version(model, version))
    except MlctlError as exc:
        return {"model": model, "version": version, "datasets": [], "features": [], "note": exc.message}


def act(
    report: DriftReport,
    *,
    source: str,
    remediation: str,
    service: str | None = None,
    model: str | None = None,
    version: str | None = None,
    rollback: Callable[[str], dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Audit and emit the check, then remediate if drift was found. Returns the actions taken.
    ``rollback`` is the release service's rollback, handed down by the service layer (monitoring
    sits below releases: it never imports the verb it triggers)."""
    summary = report.to_dict()
    drifted = summary["drifted_features"]
    emit(
        "drift.checked",
        source,
        {
            "source": source,
            "service": service,
            "model": model,
            "version": version,
            "drift_detected": report.drift_detected,
            "drifted_features": drifted,
            "prediction_drift": summary["prediction_drift"],
            "n_reference": report.n_reference,
            "n_current": report.n_current,
            "features": [
                {"name": f["name"], "kind": f["kind"], "drifted": f["drifted"], "scores": f["scores"]}
                for f in summary["features"]
            ],
        },
    )
    actions: list[dict[str, Any]] = []
    if report.drift_detected and remediation != "none":
        emit(
            "drift.detected",
            source,
            {
                "source": source,
                "service": service,
                "drifted_features": drifted,
                "prediction_drift": summary["prediction_drift"],
            },
        )
        actions.append({"action": "alert", "ok": True})
        if remediation == "retrain":
            pins = _registry_pins(model, version)
            emit(
                "retrain.required",
                f"{model}:{version}" if model else source,
                {
                    "reason": "drift",
                    "source": source,
                    "service": service,
                    "drifted_features": drifted,
                    "production": pins,
                },
            )
            actions.append(
                {"action": "retrain", "ok": bool(pins.get("datasets") or pins.get("features")), "pins": pins}
            )
        elif remediation == "rollback":
            if service is None:
                actions.append(
                    {
                        "action": "rollback",
                        "ok": False,
                        "error": "rollback needs a service (mlctl monitor drift SERVICE)",
                    }
                )
            else:
                actions.append(rollback(service) if rollback is not None else {
                    "action": "rollback", "ok": False, "error": "no rollback is wired: run drift through the service layer"})
    _audit(
        action="monitor.drift",
        subject=service or source,
        decision="deny" if report.drift_detected else "allow",
        reasons=[f"{f.name}: {'; '.join(f.reasons)}" for f in report.features if f.drifted],
        details={
            "source": source,
            "model": model,
            "version": version,
            "drifted_features": drifted,
            "remediation": remediation,
            "actions": [a["action"] for a in actions],
            "n_reference": report.n_reference,
            "n_current": report.n_current,
        },
    )
    return actions
