"""What is in production: the model version each live service serves, read from the release engine's
tables (read-only), with its registry record. Used by retrain triggers, drift remediation and the
validation gate's default baseline."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from control_plane.errors import MlctlError
from control_plane.registry import get_version
from control_plane.release.models import LiveServiceRow, ReleaseRow
from control_plane.store import session_scope


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

