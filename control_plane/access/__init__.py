"""Identity and role-based access control.

The actor comes from :func:`control_plane.identity.current` (a verified OIDC token, or in dev
tiers ``--as`` / the OS user); a verified identity's roles come from the identity file, an
asserted one's from the roles file (:mod:`control_plane.identity.roles`); which role may do what is
decided by ``policies/rbac.rego``. Deny by default: no actor, no roles file, no role granting the action,
or an action the policy does not know, all deny, with reasons and a fix.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from control_plane import audit, identity
from control_plane.errors import PolicyViolation
from control_plane.identity.roles import ROLES, create_hint, load_assignments, roles_file, roles_of
from control_plane.policy.rego import RegoPolicy
from control_plane.settings import POLICIES_DIR

if TYPE_CHECKING:
    from blueprints.schema import Environment

__all__ = ["ROLES", "AccessDecision", "authorize", "check", "current_identity", "roles_of"]

RBAC_POLICY = POLICIES_DIR / "rbac.rego"
_policy: Any = None
_policy_lock = threading.Lock()


@dataclass(frozen=True)
class AccessDecision:
    actor: str | None
    roles: list[str]
    action: str
    subject: str
    allowed: bool
    reasons: list[str] = field(default_factory=list)
    granted_by: list[str] = field(default_factory=list)


def _rbac() -> Any:
    global _policy
    with _policy_lock:
        if _policy is None:  # compiled on the first check (RegoPolicy loads regopy then)
            _policy = RegoPolicy([RBAC_POLICY])
        return _policy


def current_identity() -> tuple[str | None, list[str]]:
    me = identity.current()
    return me.name, me.roles


def check(action: str, subject: str) -> AccessDecision:
    """Evaluate RBAC for the current actor without raising."""
    me = identity.current()
    who: str | None = me.name
    if me.is_verified:
        roles = me.roles  # from the identity file's group / client mapping
    else:
        assignments = load_assignments()
        if assignments is None:
            return AccessDecision(
                who, [], action, subject, False,
                [f"no roles file at {roles_file()}: every action is denied until roles are assigned"],
            )
        roles = assignments.get(me.name, [])
    query: dict[str, Any] = {"roles": roles, "action": action, "subject": subject}
    if who:
        query["actor"] = who  # absent, not null: the policy's "no actor" rule tests for absence
    answer = _rbac().query("data.rbac.decision", query)
    if not isinstance(answer, dict):
        answer = {"allowed": False, "reasons": ["the RBAC policy returned no decision"], "granted_by": []}
    return AccessDecision(
        who, roles, action, subject, bool(answer.get("allowed")),
        list(answer.get("reasons", [])), list(answer.get("granted_by", [])),
    )


def authorize(action: str, subject: str, *, env: Environment | None = None) -> AccessDecision:
    """Allow or raise PolicyViolation naming the actor, roles and the missing permission.

    With ``env`` (a verb that changes that environment), a staging or prod tier also requires a
    verified identity. Denials are audited; the allowed action records its own entry when it has
    done its work.
    """
    if env is not None:
        refused = identity.refusal(env, action)
        if refused is not None:
            audit.record(action=action, subject=subject, decision="deny", reasons=[refused.reason],
                         details=refused.details)
            raise PolicyViolation(refused.reason, hint=refused.hint)
    decision = check(action, subject)
    if decision.allowed:
        return decision
    audit.record(action=action, subject=subject, decision="deny", reasons=decision.reasons,
                 details={"check": "rbac"})
    if decision.actor is None:
        hint = "pass --as YOUR-ID (or set MLCTL_ACTOR) with a role that grants it"
    elif decision.roles == [] and _verified():
        hint = "your identity provider's groups map to no role here: ask a platform-admin to map them in the identity file"
    elif load_assignments() is None:
        hint = create_hint()
    else:
        hint = (f"ask a platform-admin to grant {decision.actor} a role that allows '{action}' in {roles_file()} "
                "(see policies/rbac.rego)")
    raise PolicyViolation(
        f"{decision.actor or 'anonymous'} may not {action} {subject}: " + "; ".join(decision.reasons),
        hint=hint,
    )


def _verified() -> bool:
    return identity.current().is_verified
