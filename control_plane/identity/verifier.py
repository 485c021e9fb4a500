"""Verify OIDC JWT access tokens (RFC 9068) against the issuer's discovery document and JWKS.

PyJWT does the signature and registered-claim checks (``PyJWKClient`` caches the JWKS and fetches
it again when a token names a key id it has not seen, which is how a key rotation at the issuer is
followed without a restart). What PyJWT does not do, we do before it: an algorithm allow-list read
from the header (never ``none``, never HS*), ``typ`` must be ``at+jwt`` (so an ID token is not an
access token), and the issuer must be one the identity file trusts, compared exactly
(``http://localhost:8080`` is not ``http://127.0.0.1:8080``).

Every refusal is a ``TokenRejected`` with a short reason and nothing more: the caller learns that
and why in a few words, never the token or the key material.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import jwt

from control_plane.errors import MlctlError
from control_plane.identity.config import IdentityConfig, IssuerConfig

LEEWAY_SECONDS = 30  # clock skew between the issuer and us
# An unknown `kid` makes us fetch the JWKS again, at most once per this many seconds: a new key at
# the issuer is followed within seconds, while a flood of made-up key ids cannot hammer the issuer.
REFETCH_COOLDOWN_SECONDS = 5.0


class TokenRejected(MlctlError):
    """The bearer token did not verify; ``reason`` is short and safe to show."""

    exit_code = 4

    def __init__(self, reason: str, *, hint: str | None = None) -> None:
        self.reason = reason
        super().__init__(f"token rejected: {reason}",
                         hint=hint or "log in again (mlctl login), or mlctl logout to act as the OS user in dev tiers")


@dataclass(frozen=True)
class VerifiedIdentity:
    """Who a verified token says is acting, and the roles the identity file gives them."""

    issuer: str
    subject: str  # the issuer's stable subject id (actor_claim, default `sub`)
    kind: Literal["person", "workload"]
    client_id: str
    roles: list[str]
    groups: list[str] = field(default_factory=list)
    name: str = ""  # preferred_username, for display only
    expires_at: int = 0

    @property
    def actor(self) -> str:
        """The actor id recorded in approvals and audit entries: the subject. Separation of duties
        compares these (within one issuer, distinct subjects are distinct people)."""
        return self.subject


class Verifier:
    """One per process (or server): holds each issuer's discovery document and JWKS cache."""

    def __init__(self, config: IdentityConfig, *, refetch_cooldown: float = REFETCH_COOLDOWN_SECONDS) -> None:
        self.config = config
        self.refetch_cooldown = refetch_cooldown
        self._jwks: dict[str, jwt.PyJWKClient] = {}
        self._lock = threading.Lock()

    def _jwk_client(self, issuer: IssuerConfig) -> jwt.PyJWKClient:
        with self._lock:
            client = self._jwks.get(issuer.issuer)
            if client is None:
                try:
                    r = httpx.get(f"{issuer.issuer.rstrip('/')}/.well-known/openid-configuration", timeout=5)
                    r.raise_for_status()
                    discovery = r.json()
                except (httpx.HTTPError, ValueError):
                    raise TokenRejected("the issuer's discovery document is unreachable",
                                        hint=f"check that {issuer.issuer} is up") from None
                if discovery.get("issuer") != issuer.issuer or not discovery.get("jwks_uri"):
                    raise TokenRejected("the issuer's discovery document names another issuer")
                client = jwt.PyJWKClient(discovery["jwks_uri"], cache_keys=True, lifespan=300, timeout=5,
                                         cooldown_duration=self.refetch_cooldown)
                self._jwks[issuer.issuer] = client
            return client

    def verify(self, token: str | None) -> VerifiedIdentity:
        if not token:
            raise TokenRejected("no token", hint="log in first: mlctl login")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise TokenRejected("not a JWT") from None
        alg = str(header.get("alg", ""))
        iss = unverified.get("iss")
        issuer = self.config.issuer(iss) if isinstance(iss, str) else None
        if issuer is None:
            raise TokenRejected("issuer not trusted")
        if alg not in issuer.algorithms:
            raise TokenRejected(f"algorithm {alg or 'missing'} not allowed")
        if str(header.get("typ", "")).lower() not in issuer.access_token_types:
            raise TokenRejected("not an access token (typ is not at+jwt)")
        try:
            key = self._jwk_client(issuer).get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError:
            raise TokenRejected("the issuer's keys are unreachable") from None
        except jwt.PyJWKClientError:
            raise TokenRejected("signed by a key the issuer does not publish") from None
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key.key, algorithms=[alg], audience=self.config.audience, issuer=issuer.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "iss", "aud", "sub"], "verify_nbf": True},
            )
        except jwt.ExpiredSignatureError:
            raise TokenRejected("expired") from None
        except jwt.ImmatureSignatureError:
            raise TokenRejected("not yet valid") from None
        except jwt.InvalidAudienceError:
            raise TokenRejected("wrong audience") from None
        except jwt.InvalidIssuerError:
            raise TokenRejected("issuer not trusted") from None
        except jwt.InvalidSignatureError:
            raise TokenRejected("bad signature") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenRejected(f"missing claim {exc.claim}") from None
        except jwt.PyJWTError:
            raise TokenRejected("invalid token") from None
        for claim, value in issuer.required_claims.items():
            if str(claims.get(claim, "")) != value:
                raise TokenRejected(f"not an access token ({claim})")
        return self._identity(issuer, claims)

    @staticmethod
    def _identity(issuer: IssuerConfig, claims: dict[str, Any]) -> VerifiedIdentity:
        kind_value = str(claims.get(issuer.kind_claim, ""))
        kind: Literal["person", "workload"]
        if kind_value in issuer.person_values:
            kind = "person"
        elif kind_value in issuer.workload_values:
            kind = "workload"
        else:
            # Never guessed from `sub` or from the presence of other claims.
            raise TokenRejected(f"no principal type claim ({issuer.kind_claim})")
        subject = claims.get(issuer.actor_claim)
        if not isinstance(subject, str) or not subject:
            raise TokenRejected(f"missing claim {issuer.actor_claim}")
        client_id = str(claims.get(issuer.client_claim) or claims.get("azp") or "")
        raw_groups = claims.get(issuer.groups_claim) or []
        groups = [str(g) for g in raw_groups] if isinstance(raw_groups, list) else []
        roles: set[str] = set()
        if kind == "person":
            for g in groups:
                roles.update(issuer.groups.get(g, []))
        else:
            roles.update(issuer.clients.get(client_id, []))
        return VerifiedIdentity(
            issuer=issuer.issuer, subject=subject, kind=kind, client_id=client_id, roles=sorted(roles),
            groups=groups, name=str(claims.get("preferred_username") or claims.get("name") or subject),
            expires_at=int(claims.get("exp", 0)),
        )
