"""What is in production: the model version each live service serves, read from the release engine's
tables (read-only), with its registry record. Used by retrain triggers, drift remediation and the
validation gate's default baseline."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from control_plane.errors import MlctlError


@dataclass(frozen=True)
class ProductionVersion:
    service: str
    environment: str
    name: str
    version: str
    record: Any = None  # the registry's ModelVersion, when it resolves

    def as_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "environment": self.environment,
            "name": self.name,
            "version": self.version,
        }


def production_versions() -> list[ProductionVersion]:
    """Every live service's model version; empty when the release engine has recorded none."""
    try:
        from sqlalchemy import select

        from control_plane.registry import get_version
        from control_plane.release.models import LiveServiceRow, ReleaseRow
        from control_plane.store import session_scope
    except ImportError:
        return []
    out: list[ProductionVersion] = []
    with session_scope() as s:
        rows = [
            (lv.service, lv.environment, lv.live_version, lv.live_release_id)
            for lv in s.scalars(select(LiveServiceRow))
        ]
        names = {
            r.id: r.model_name
            for r in s.scalars(select(ReleaseRow).where(ReleaseRow.id.in_([rid for *_, rid in rows])))
        }
    for service, env, version, rid in rows:
        name = names.get(rid)
        if not name or not version:
            continue
        record = None
        with contextlib.suppress(MlctlError):
            record = get_version(name, version)
        out.append(ProductionVersion(service, env, name, version, record))
    return out


def production_version(name: str, environment: str) -> ProductionVersion | None:
    return next((p for p in production_versions() if p.name == name and p.environment == environment), None)


def service_version(service: str) -> ProductionVersion | None:
    return next((p for p in production_versions() if p.service == service), None)


def rollback(service: str) -> dict[str, Any]:
    """Roll ``service`` back (drift remediation): the release service's ``rollback``, the same verb
    as ``mlctl release rollback``, with its RBAC and audit, as the acting identity."""
    try:
        # Function-level: the service layer sits above monitor (drift remediation is a verb calling
        # another verb); importing it at module level would close a services -> monitor -> services loop.
        from control_plane.services import Context
        from control_plane.services import release as releases
    except ImportError:
        return {"action": "rollback", "ok": False, "error": "the release engine is not installed"}
    try:
        view = releases.rollback(Context(), service)
    except MlctlError as exc:
        return {"action": "rollback", "ok": False, "error": exc.message}
    if view.refusal is not None:
        return {"action": "rollback", "ok": False, "error": view.refusal.message}
    if view.exit_code:  # the rollback release itself rolled back or paused
        return {
            "action": "rollback",
            "ok": False,
            "error": f"the rollback release did not finish (exit {view.exit_code})",
        }
    from control_plane.release.engine import live

    row = live(service)
    return {"action": "rollback", "ok": True, "live_version": None if row is None else row.live_version}
