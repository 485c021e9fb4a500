"""Environment approvals and the release gate.

``record_approval(name, version, env, approver)`` records an approval (never the registrant's
own; who may approve is checked by ``control_plane.services.approvals.approve``);
``gate(name, version, env)`` asks ``policies/release.rego`` whether the recorded approvals satisfy
the rule of the environment's declared tier and returns every reason. Both are audited. ``env`` is a blueprint environment (``uae-prod-aws``, a blueprint path,
or a loaded ``Environment``); approvals are recorded per environment, not per tier, so approving
for one prod environment does not approve for another.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from blueprints.schema import Environment
from control_plane import audit
from control_plane.access import roles_of
from control_plane.environments import resolve
from control_plane.errors import PolicyViolation
from control_plane.identity import config as identity_config
from control_plane.policy.rego import RegoPolicy
from control_plane.registry import get_version
from control_plane.registry.models import ApprovalRow
from control_plane.registry.service import now
from control_plane.registry.view import ModelVersion
from control_plane.settings import POLICIES_DIR
from control_plane.store import session_scope

if TYPE_CHECKING:
    from control_plane.identity import Actor

TIERS = ("dev", "staging", "prod")
RELEASE_POLICY = POLICIES_DIR / "release.rego"
_policy: Any = None
_lock = threading.Lock()

__all__ = ["TIERS", "Approval", "Decision", "approvals_for", "gate", "record_approval"]


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reasons: list[str] = field(default_factory=list)
    ref: str = ""
    env: str = ""
    approvers: list[str] = field(default_factory=list)
    tier: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Approval:
    name: str
    version: str
    env: str
    approver: str
    roles: list[str]
    verified: bool
    kind: str  # person | workload
    root_digest: str
    created_at: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _release_policy() -> Any:
    global _policy
    with _lock:
        if _policy is None:
            _policy = RegoPolicy([RELEASE_POLICY])
        return _policy


def _environment(env: str | Environment) -> Environment:
    if isinstance(env, Environment):
        return env
    return resolve(env)


def approvals_for(name: str, version: str, env: str) -> list[Approval]:
    with session_scope() as s:
        rows = s.execute(
            select(ApprovalRow).where(ApprovalRow.name == name, ApprovalRow.version == version,
                                      ApprovalRow.env == env).order_by(ApprovalRow.id)
        ).scalars().all()
        return [Approval(r.name, r.version, r.env, r.approver, *_recorded(r.roles), r.root_digest, r.created_at)
                for r in rows]


def _recorded(raw: str) -> tuple[list[str], bool, str]:
    """(roles now, verified, kind) of a stored approval (older rows hold a bare list of roles:
    asserted). Asserted identities are taken to be people; only verified ones can prove it."""
    data = json.loads(raw)
    if not isinstance(data, dict) or data.get("identity", {}).get("source") != "verified":
        return (list(data.get("roles", [])) if isinstance(data, dict) else list(data)), False, "person"
    who = data["identity"]
    return _roles_now(who, list(data.get("groups", []))), True, str(who.get("kind", ""))


def _roles_now(who: dict[str, Any], groups: list[str]) -> list[str]:
    """A verified approver's roles under the current identity file (none if its issuer is gone)."""
    loaded = identity_config.load()
    issuer = loaded.issuer(str(who.get("issuer"))) if loaded else None
    if issuer is None:
        return []
    if who.get("kind") == "workload":
        return list(issuer.clients.get(str(who.get("client")), []))
    return sorted({r for g in groups for r in issuer.groups.get(g, [])})


def _evaluate(mv: ModelVersion, env: Environment) -> Decision:
    approvals = approvals_for(mv.name, mv.version, env.name)
    answer = _release_policy().query("data.release.decision", {
        "env": env.name,
        "tier": str(env.tier),
        "model": {"ref": mv.ref, "classification": mv.classification, "registered_by": mv.registered_by,
                  "root_digest": mv.root_digest, "signed": mv.signature.signed},
        # Roles as they are now: revoking someone's role withdraws their approvals.
        "approvals": [{"approver": a.approver, "roles": a.roles if a.verified else roles_of(a.approver),
                       "verified": a.verified, "kind": a.kind, "root_digest": a.root_digest}
                      for a in approvals],
    })
    if not isinstance(answer, dict):
        return Decision(False, ["the release policy returned no decision"], mv.ref, env.name, tier=str(env.tier))
    return Decision(bool(answer.get("allowed")), list(answer.get("reasons", [])), mv.ref, env.name,
                    [a.approver for a in approvals], str(env.tier))


def gate(name: str, version: str, env: str | Environment) -> Decision:
    """Allow/deny for releasing NAME:V to ENV, with every reason. Audited (action ``release.gate``)."""
    mv = get_version(name, version)
    environment = _environment(env)
    decision = _evaluate(mv, environment)
    audit.record(action="release.gate", subject=f"{mv.ref}@{environment.name}",
                 decision="allow" if decision.allowed else "deny", reasons=decision.reasons,
                 digests={"root": mv.root_digest}, details={"env": environment.name, "tier": decision.tier})
    return decision


def record_approval(name: str, version: str, env: str | Environment, approver: Actor) -> Decision:
    """Record ``approver``'s approval of NAME:V for ENV; return the gate decision after it.

    The caller has authorized the approver (``services.approvals.approve``: the ``approve``
    permission, and in a staging or prod environment a verified identity). Refused here (and
    audited) for the registrant's own model; approving twice is a no-op. The approval binds to
    the registered root digest.
    """
    environment = _environment(env)
    mv = get_version(name, version)
    subject = f"{mv.ref}@{environment.name}"
    me = approver
    who = me.name
    if who == mv.registered_by:
        reason = f"{who} registered {mv.ref} and cannot approve it (separation of duties)"
        audit.record(action="approve", subject=subject, decision="deny", reasons=[reason],
                     digests={"root": mv.root_digest})
        raise PolicyViolation(reason, hint="ask an approver who did not register the model")
    roles = me.roles if me.is_verified else roles_of(who)
    # Recorded with how the identity was established. At evaluation a verified approver's roles are
    # mapped again from the recorded groups (or client) through the identity file as it is then, an
    # asserted one's re-read from the roles file: revoking a role in either withdraws the approval.
    recorded: dict[str, Any] = {"roles": roles, "identity": me.audit_view()}
    if me.verified is not None:
        recorded["groups"] = me.verified.groups
    try:
        with session_scope() as s:
            s.add(ApprovalRow(name=name, version=version, env=environment.name, approver=who,
                              roles=json.dumps(recorded), root_digest=mv.root_digest, created_at=now()))
            s.flush()
            audit.record(action="approve", subject=subject, digests={"root": mv.root_digest},
                         details={"env": environment.name, "tier": str(environment.tier), "roles": roles},
                         session=s)
    except IntegrityError:
        pass  # already approved by this person: approving twice is a no-op, it never counts twice
    return _evaluate(mv, environment)
