"""Who is calling: the bearer token, verified, becomes the request's Context.

Every route but the probes depends on ``caller``. No token, or one that does not verify, is a 401
with a short reason (RFC 6750 ``WWW-Authenticate``), never the token or key material; the service
layer then decides what the verified identity may do (403). The verifier is the process's one
(``identity.verifier()``): its JWKS cache follows a key rotation at the issuer without a restart.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.security.utils import get_authorization_scheme_param

from control_plane import identity
from control_plane.identity import Actor, TokenRejected
from control_plane.services import Context

__all__ = ["NotAuthenticated", "caller"]


class NotAuthenticated(Exception):
    """→ 401. ``reason`` is short and safe to show."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def _bearer(request: Request) -> str | None:
    scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def caller(request: Request) -> Context:
    """The verified Context of this request (raises NotAuthenticated)."""
    token = _bearer(request)
    if token is None:
        raise NotAuthenticated("no bearer token")
    verifier = identity.verifier()
    if verifier is None:
        raise NotAuthenticated("the server has no identity file: no issuer is trusted")
    try:
        verified = verifier.verify(token)
    except TokenRejected as exc:
        request.app.state.metrics.token_rejected(exc.reason)
        raise NotAuthenticated(exc.reason) from None
    return Context.for_actor(Actor(verified.actor, "verified", verified.roles, verified))
