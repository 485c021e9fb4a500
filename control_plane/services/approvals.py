"""``approve``: record an approval of a model version for an environment, as the Context's actor.

RBAC happens here (the ``approve`` permission, and a verified identity for a staging or prod
tier), denials audited; ``approvals.record_approval`` then refuses the registrant's own model,
records the approval with its audit entry and evaluates the release gate.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from control_plane import approvals
from control_plane.approvals import Decision
from control_plane.registry import get_version
from control_plane.services.context import Context

__all__ = ["ApprovalView", "approve"]


@dataclass(frozen=True)
class ApprovalView:
    """The gate's decision after the approval (JSON: ``Decision.as_dict``)."""

    decision: Decision

    @property
    def allowed(self) -> bool:
        return self.decision.allowed

    @property
    def reasons(self) -> list[str]:
        return self.decision.reasons

    def as_json(self) -> Any:
        return self.decision.as_dict()

    def renderables(self) -> Iterable[Any]:
        d = self.decision
        state = "[green]release allowed[/]" if d.allowed else "[yellow]release not yet allowed[/]"
        yield f"approval recorded for [bold]{d.ref}[/] in {d.env} ({d.tier} tier); {state}"
        for reason in d.reasons:
            yield f"  - {reason}"


def approve(ctx: Context, name: str, version: str, env_name: str) -> ApprovalView:
    """Approve NAME:VERSION for ENV (a blueprint environment: its tier decides the rule)."""
    environment = ctx.environment(env_name)
    mv = get_version(name, version)  # "not registered" before any permission question
    with ctx.acting():
        ctx.authorize("approve", f"{mv.ref}@{environment.name}", env=environment)
        return ApprovalView(approvals.record_approval(name, version, environment, ctx.actor))
