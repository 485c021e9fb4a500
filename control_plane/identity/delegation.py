"""Delegation: the server hands the steps of a pipeline run it drives the identity it verified.

A local KFP run's steps (register, sign) are child processes of whoever drives the run. Driven by
``mlctl server`` for a verified caller, they would otherwise resolve identity on their own and act
as the server's account. So the server mints a **delegation credential** for the run: the verified
identity (actor, roles, groups, issuer, subject, client, kind) bound to the run id, with an expiry
(the run's time limit), authenticated with an HMAC-SHA256 key only the server's account can read
(``$MLCTL_HOME/keys/delegation.key``, 0600, in the home the server's lock-down checks keep private).
It reaches the steps in their environment (``MLCTL_DELEGATION``), never on a command line, in a
log or in the run record.

A step declares the run it belongs to (``belongs_to``, called by the step wrapper before the step
does anything); ``identity.current()`` then accepts the credential only if its MAC verifies, it has
not expired and it names that run. Anything else is refused with a ``PolicyViolation`` saying why,
so the step fails naming it: never a quiet fall back to the token cache or the operating-system
user. A process that is not a step of a run (the server itself, which holds the variable while it
drives a run) never uses it. The audit entries of a delegated identity carry method ``delegated``
and, in their details, the run and that the server delegated it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from control_plane.errors import PolicyViolation
from control_plane.identity.verifier import VerifiedIdentity
from control_plane.settings import current as settings
from control_plane.settings import host_secret, state_dir

__all__ = ["Delegation", "belongs_to", "delegating", "key_path", "mint", "requested", "verify"]

KEY_FILE = "delegation.key"
_PREFIX = "mlctl-delegation.v1"
_KEY_BYTES = 32
DELEGATED_BY = "mlctl-server"


@dataclass(frozen=True)
class Delegation:
    """What a verified credential says: who the server verified, for which run, until when."""

    run_id: str
    identity: VerifiedIdentity
    expires_at: int
    issued_at: int


def key_path() -> Path:
    return state_dir("keys") / KEY_FILE


def _private_key(path: Path, *, create: bool) -> bytes:
    return host_secret(path, "the delegation key", create=create, error=PolicyViolation,
                       missing_hint="start the run again through the server (it creates the key)")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, body: str) -> str:
    return _b64(hmac.digest(key, f"{_PREFIX}.{body}".encode(), hashlib.sha256))


def mint(verified: VerifiedIdentity, run_id: str, *, ttl_s: int, now: float | None = None) -> str:
    """The credential for the steps of ``run_id``, acting as ``verified`` for ``ttl_s`` seconds.
    A secret: put it only in the steps' environment."""
    issued = int(time.time() if now is None else now)
    claims = {"run": run_id, "iat": issued, "exp": issued + int(ttl_s), "by": DELEGATED_BY,
              "iss": verified.issuer, "sub": verified.subject, "kind": verified.kind, "client": verified.client_id,
              "roles": list(verified.roles), "groups": list(verified.groups), "name": verified.name}
    body = _b64(json.dumps(claims, sort_keys=True, separators=(",", ":")).encode())
    return f"{_PREFIX}.{body}.{_mac(_private_key(key_path(), create=True), body)}"


def _refused(why: str, hint: str = "start the run again through the server: mlctl pipeline run NAME") -> PolicyViolation:
    return PolicyViolation(f"the delegation credential of this pipeline step is refused: {why}", hint=hint)


def verify(credential: str, run_id: str, *, now: float | None = None) -> Delegation:
    """The delegation ``credential`` carries, if its MAC verifies with the server's key, it has not
    expired and it is for ``run_id``; PolicyViolation saying which check failed otherwise."""
    text = credential.strip()
    body, _, mac = text.removeprefix(_PREFIX + ".").partition(".")
    if not text.startswith(_PREFIX + ".") or not body or not mac or "." in mac:
        raise _refused("it is not a delegation credential (malformed)")
    if not hmac.compare_digest(mac, _mac(_private_key(key_path(), create=False), body)):
        raise _refused("its MAC does not verify (it was altered, or minted with another server's key)")
    try:
        claims: dict[str, Any] = json.loads(_unb64(body))
        expires, issued, run = int(claims["exp"]), int(claims["iat"]), str(claims["run"])
        verified = VerifiedIdentity(issuer=str(claims["iss"]), subject=str(claims["sub"]), kind=claims["kind"],
                                    client_id=str(claims["client"]), roles=[str(r) for r in claims["roles"]],
                                    groups=[str(g) for g in claims.get("groups", [])], name=str(claims.get("name", "")),
                                    expires_at=expires)
    except (ValueError, KeyError, TypeError):
        raise _refused("its content is not readable (malformed)") from None
    at = time.time() if now is None else now
    if at >= expires:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires))
        raise _refused(f"it expired at {stamp} (the run's time limit)")
    if run != run_id:
        raise _refused(f"it was issued for run {run}, not for this step's run {run_id}")
    return Delegation(run_id=run, identity=verified, expires_at=expires, issued_at=issued)


# --- the step side: which run this process is a step of ------------------------------------------

_step_of: str | None = None  # a process is a step of at most one run: a module global, not a ContextVar


def belongs_to(run_id: str) -> Delegation | None:
    """Declare this process a step of ``run_id`` and check the credential it was given, if any (so a
    bad one fails the step before it does anything, naming why)."""
    global _step_of
    _step_of = run_id
    return current_delegation()


def current_delegation() -> Delegation | None:
    """The verified delegation of this step (None: no credential, or this process is no step)."""
    credential = settings().delegation
    if not credential or _step_of is None:
        return None
    return verify(credential, _step_of)


# --- the driver side: which runs get a credential --------------------------------------------------

_delegating: ContextVar[bool] = ContextVar("mlctl_delegating", default=False)


@contextmanager
def delegating() -> Iterator[None]:
    """Runs driven inside the block hand their steps the (verified) acting identity: what the server
    does for its callers. Without it (a CLI run) the steps resolve identity themselves, as the CLI does."""
    token = _delegating.set(True)
    try:
        yield
    finally:
        _delegating.reset(token)


def requested() -> bool:
    return _delegating.get()
