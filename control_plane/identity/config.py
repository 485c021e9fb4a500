"""The identity file: which OpenID issuers we trust and how their claims map to our roles.

Like Argo CD's ``policy.csv``, but YAML. Default ``$MLCTL_HOME/identity.yaml``; ``MLCTL_IDENTITY_FILE``
points elsewhere. ``mlctl local up`` writes one for the embedded provider. Shape::

    audience: urn:mlctl:control-plane       # the control plane's audience (tokens' `aud`)
    issuers:
      - issuer: https://login.microsoftonline.com/<tenant>/v2.0   # exact `iss`, no trailing-slash games
        name: entra
        cli_client_id: <app id of the mlctl public client>      # what `mlctl login` asks for
        groups_claim: groups            # where the issuer puts groups (Cognito: cognito:groups)
        actor_claim: sub                # the stable subject id recorded as the actor
        kind_claim: idtyp               # the explicit people-vs-workload claim ...
        person_values: [user]           # ... and its values
        workload_values: [app]
        client_claim: azp               # a workload's client id (Entra: azp/appid, Keycloak: azp)
        access_token_types: [jwt]       # header typ values accepted (default at+jwt; "" = none)
        required_claims: {}             # e.g. Cognito {token_use: access}
        groups: {<group object id>: [approver]}
        clients: {<workload app id>: [ml-engineer]}

Unknown keys and unknown roles are refused at load (a typo must not grant or drop a permission).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from control_plane.errors import PolicyViolation
from control_plane.identity.roles import ROLES
from control_plane.settings import current as settings
from control_plane.settings import mlctl_home

# Asymmetric signatures only: `none` and the HS* family (a shared secret, or the classic attack of
# "HMAC with the public key") are never accepted.
ALLOWED_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
_ISSUER_KEYS = {"issuer", "name", "cli_client_id", "groups_claim", "actor_claim", "kind_claim",
                "person_values", "workload_values", "client_claim", "groups", "clients", "algorithms",
                "access_token_types", "required_claims"}
# RFC 9068 access tokens say what they are in the header; an ID token does not pass this.
ACCESS_TOKEN_TYPES = ("at+jwt", "application/at+jwt")


@dataclass(frozen=True)
class IssuerConfig:
    issuer: str
    name: str = ""
    cli_client_id: str = "mlctl-cli"
    groups_claim: str = "groups"
    actor_claim: str = "sub"
    kind_claim: str = "principal_type"
    person_values: tuple[str, ...] = ("person",)
    workload_values: tuple[str, ...] = ("workload",)
    client_claim: str = "client_id"
    groups: dict[str, list[str]] = field(default_factory=dict)
    clients: dict[str, list[str]] = field(default_factory=dict)
    algorithms: tuple[str, ...] = ALLOWED_ALGORITHMS
    # Issuers that do not type their access tokens at+jwt (Entra ID: "JWT"; Cognito: none) are
    # configured with what they send ("" = no typ) plus a claim only access tokens carry
    # (Cognito: token_use: access), and the audience check keeps ID tokens out (their aud is the
    # client id, never the control plane's audience).
    access_token_types: tuple[str, ...] = ACCESS_TOKEN_TYPES
    required_claims: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class IdentityConfig:
    audience: str
    issuers: tuple[IssuerConfig, ...]
    source: str = ""

    def issuer(self, iss: str) -> IssuerConfig | None:
        return next((i for i in self.issuers if i.issuer == iss), None)  # exact match, no normalising


def identity_file() -> Path:
    return settings().identity_file or mlctl_home() / "identity.yaml"


def _fail(path: Path, what: str) -> PolicyViolation:
    return PolicyViolation(f"{path}: {what}", hint="see docs/identity.md for the identity file's shape")


def _roles_map(path: Path, where: str, value: Any) -> dict[str, list[str]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(path, f"{where}: expected a mapping of name -> [role, ...]")
    out: dict[str, list[str]] = {}
    for key, roles in value.items():
        roles = [roles] if isinstance(roles, str) else roles
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise _fail(path, f"{where}.{key}: expected a list of roles")
        bad = [r for r in roles if r not in ROLES]
        if bad:
            raise _fail(path, f"{where}.{key}: unknown role(s) {', '.join(bad)} (use {', '.join(ROLES)})")
        out[str(key)] = sorted(set(roles))
    return out


def load(path: Path | None = None) -> IdentityConfig | None:
    """The trusted issuers, or None when there is no identity file (no token can then verify)."""
    path = path or identity_file()
    if not path.exists():
        return None
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise _fail(path, f"cannot read the identity file ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("audience"), str):
        raise _fail(path, "expected a mapping with 'audience' (text) and 'issuers' (a list)")
    unknown = set(data) - {"audience", "issuers"}
    if unknown:
        raise _fail(path, f"unknown top-level key(s) {', '.join(sorted(map(str, unknown)))}")
    issuers: list[IssuerConfig] = []
    for i, raw in enumerate(data.get("issuers") or []):
        where = f"issuers[{i}]"
        if not isinstance(raw, dict) or not isinstance(raw.get("issuer"), str):
            raise _fail(path, f"{where}: needs 'issuer' (the exact `iss` of its tokens)")
        bad_keys = set(raw) - _ISSUER_KEYS
        if bad_keys:
            raise _fail(path, f"{where}: unknown key(s) {', '.join(sorted(map(str, bad_keys)))}")
        algorithms = tuple(raw.get("algorithms") or ALLOWED_ALGORITHMS)
        refused = [a for a in algorithms if a not in ALLOWED_ALGORITHMS]
        if refused:
            raise _fail(path, f"{where}.algorithms: {', '.join(refused)} not allowed (asymmetric only: "
                              f"{', '.join(ALLOWED_ALGORITHMS)})")
        simple = {k: raw[k] for k in ("name", "cli_client_id", "groups_claim", "actor_claim", "kind_claim",
                                      "client_claim") if k in raw}
        issuers.append(IssuerConfig(
            issuer=raw["issuer"], **{k: str(v) for k, v in simple.items()},
            person_values=tuple(str(v) for v in raw.get("person_values") or ("person",)),
            workload_values=tuple(str(v) for v in raw.get("workload_values") or ("workload",)),
            groups=_roles_map(path, f"{where}.groups", raw.get("groups")),
            clients=_roles_map(path, f"{where}.clients", raw.get("clients")),
            algorithms=algorithms,
            access_token_types=tuple(str(t).lower() for t in raw.get("access_token_types") or ACCESS_TOKEN_TYPES),
            required_claims={str(k): str(v) for k, v in (raw.get("required_claims") or {}).items()},
        ))
        if issuers[-1].cli_client_id == data["audience"]:
            raise _fail(path, f"{where}: the audience equals the CLI client id, so an ID token would pass as "
                              "an access token; give the control plane its own audience")
    if not issuers:
        raise _fail(path, "no issuers: add at least one under 'issuers'")
    return IdentityConfig(audience=data["audience"], issuers=tuple(issuers), source=str(path))
