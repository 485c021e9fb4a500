"""Who is acting: a verified OIDC identity, or, in a dev-tier environment only, an asserted one.

``current()`` resolves, in this order:

0. In a step of a pipeline run the server drives: the identity the server verified and delegated
   to the run (``delegation``; a credential that fails its checks is refused, never skipped).
1. ``--as ID`` / ``MLCTL_ACTOR``: an *asserted* identity (anyone can type it), roles from the roles
   file. Accepted in dev-tier environments only.
2. The token cache of ``mlctl login``: the access token is verified (``verifier``) against the
   issuers of the identity file; roles come from the identity file's group / client mapping.
   Refreshed first when it is about to expire and a refresh token exists.
3. The operating-system user: also asserted (source ``os-user``), dev tier only.

``refusal(env, action)`` says why a state-changing verb may not run in a staging or prod
environment (an identity that is not verified, a ``$MLCTL_HOME`` others can read);
``access.authorize`` audits and raises it. Until the API server exists (``mlctl server``, next issue) the
token is verified in the mlctl process; the server will do it on its side of the wire.
"""

from __future__ import annotations

import getpass
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from control_plane.errors import PolicyViolation
from control_plane.identity import config, delegation, login, tokens
from control_plane.identity.roles import roles_of
from control_plane.identity.verifier import TokenRejected, VerifiedIdentity, Verifier
from control_plane.settings import current as current_settings
from control_plane.settings import mlctl_home

if TYPE_CHECKING:
    from blueprints.schema import Environment

__all__ = ["Actor", "Refusal", "TokenRejected", "VerifiedIdentity", "acting", "current", "refusal", "verifier"]

Source = Literal["verified", "delegated", "asserted", "os-user"]
_verifiers: dict[tuple[str, float], Verifier] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class Actor:
    name: str
    source: Source
    roles: list[str]
    verified: VerifiedIdentity | None = None
    delegated_run: str | None = None  # source "delegated": the run whose steps the server handed it to

    @property
    def is_verified(self) -> bool:
        return self.verified is not None

    def audit_view(self) -> dict[str, Any]:
        """What the audit entry records about how we know who acted."""
        if self.verified is None:
            return {"source": self.source}
        v = self.verified
        view = {"source": self.source if self.source == "delegated" else "verified", "issuer": v.issuer,
                "subject": v.subject, "kind": v.kind, "client": v.client_id}
        if self.delegated_run is not None:  # verified by the server, not in this process
            view.update(delegated_by=delegation.DELEGATED_BY, run=self.delegated_run)
        return view


def verifier() -> Verifier | None:
    """The process's verifier for the current identity file (None without one)."""
    path = config.identity_file()
    try:
        key = (str(path), path.stat().st_mtime)
    except FileNotFoundError:
        return None
    with _lock:
        v = _verifiers.get(key)
        if v is None:
            loaded = config.load(path)
            if loaded is None:
                return None
            v = _verifiers[key] = Verifier(loaded)
        return v


def _from_token() -> Actor | None:
    cached = tokens.load()
    if cached is None:
        return None
    v = verifier()
    if v is None:
        raise PolicyViolation("you are logged in but there is no identity file to verify the token with",
                              hint="run `mlctl local up` (writes one for the local provider) or see docs/identity.md")
    if cached.expiring:
        issuer = v.config.issuer(cached.issuer)
        fresh = login.refresh(v.config, issuer, cached) if issuer else None
        if fresh is not None:
            tokens.save(fresh)
            cached = fresh
    identity = v.verify(cached.access_token)
    return Actor(identity.actor, "verified", identity.roles, identity)


# Who acts in this thread / task: set by the service layer (``services.Context.acting``) and, next,
# by the API server per request. A ContextVar, not a process global, so that concurrent requests
# in one server process never see each other's identity.
_acting: ContextVar[Actor | None] = ContextVar("mlctl_acting_identity", default=None)


@contextmanager
def acting(actor: Actor) -> Iterator[Actor]:
    """``current()`` returns ``actor`` inside the block."""
    token = _acting.set(actor)
    try:
        yield actor
    finally:
        _acting.reset(token)


def current() -> Actor:
    bound = _acting.get()
    if bound is not None:
        return bound
    delegated = delegation.current_delegation()
    if delegated is not None:
        v = delegated.identity
        return Actor(v.actor, "delegated", v.roles, v, delegated_run=delegated.run_id)
    asserted = current_settings().actor
    if asserted:
        return Actor(asserted, "asserted", roles_of(asserted))
    verified = _from_token()
    if verified is not None:
        return verified
    user = getpass.getuser()
    return Actor(user, "os-user", roles_of(user))


@dataclass(frozen=True)
class Refusal:
    """Why the acting identity may not change an environment: what ``access.authorize`` audits as
    the denial (``reason``, ``details``) and raises (``reason``, ``hint``). Identity only decides;
    recording is access control's (identity sits below the audit trail, which records who acted)."""

    reason: str
    hint: str
    details: dict[str, Any]


def _private_home_refusal(env: Environment, action: str) -> Refusal | None:
    """Staging and prod: no state change from a home others can read (its database, keys and audit
    copies could have been read or swapped); dev tiers only get the warning settings prints."""
    home = mlctl_home()
    mode = home.stat().st_mode & 0o777
    if not mode & 0o077:
        return None
    reason = (f"{action} in {env.name} ({env.tier} tier) refused: $MLCTL_HOME {home} is readable by "
              f"other users (mode {mode:o})")
    return Refusal(reason, f"chmod 700 {home}", {"check": "home", "env": env.name, "tier": str(env.tier)})


def refusal(env: Environment, action: str) -> Refusal | None:
    """None if the acting identity may change ``env``: any identity in a dev tier; in staging or
    prod, a verified one working from a private ``$MLCTL_HOME``."""
    who = current()
    if str(env.tier) == "dev":
        return None
    home = _private_home_refusal(env, action)
    if home is not None:
        return home
    if who.is_verified:
        return None
    how = "--as / MLCTL_ACTOR" if who.source == "asserted" else "the operating-system user"
    reason = (f"{action} in {env.name} ({env.tier} tier) needs a server-verified identity; "
              f"'{who.name}' is only asserted ({how})")
    return Refusal(reason, "log in with a verified identity: mlctl login (see docs/identity.md)",
                   {"check": "identity", "env": env.name, "tier": str(env.tier)})
