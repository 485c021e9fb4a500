"""Everything an operator asks about one model version, in one read: its siblings (the other
versions of the model), the versions derived from it (``2+onnx``), its approvals and where it
has been released (and whether it is live there). ``mlctl model show`` prints it. It reads the
registry's and the release engine's tables, so it lives in the service layer, above both."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from control_plane.registry.models import ApprovalRow, ModelVersionRow
from control_plane.registry.service import get_version
from control_plane.release.models import LiveServiceRow, ReleaseRow
from control_plane.store import session_scope


def overview(name: str, version: str) -> dict[str, Any]:
    mv = get_version(name, version)
    ref = mv.ref
    with session_scope() as s:
        rows = s.execute(
            select(ModelVersionRow).where(ModelVersionRow.name == name).order_by(ModelVersionRow.id)
        ).scalars().all()
        siblings = [r.version for r in rows if r.version != version and not r.derived_from]
        derived = [{"ref": f"{r.name}:{r.version}", "root_digest": r.root_digest}
                   for r in rows if r.derived_from == ref]
        approvals = [
            {"env": a.env, "approver": a.approver, "root_digest": a.root_digest, "created_at": a.created_at}
            for a in s.execute(select(ApprovalRow).where(ApprovalRow.name == name, ApprovalRow.version == version)
                               .order_by(ApprovalRow.id)).scalars()
        ]
        live = {row.service: row for row in s.execute(select(LiveServiceRow)).scalars()}
        deployments = [
            {"release": r.id, "service": r.service, "environment": r.environment, "state": r.state,
             "created_at": r.created_at,
             "live": r.service in live and live[r.service].live_release_id == r.id}
            for r in s.execute(select(ReleaseRow).where(ReleaseRow.model_name == name,
                                                        ReleaseRow.model_version == version)
                               .order_by(ReleaseRow.created_at)).scalars()
        ]
    return {**mv.as_dict(), "siblings": siblings, "derived": derived, "approvals": approvals,
            "deployments": deployments}
