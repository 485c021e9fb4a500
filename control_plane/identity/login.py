"""Getting tokens: the device authorization grant (RFC 8628) for people, client credentials for
workloads, and refresh. All requests go to endpoints named by the issuer's discovery document."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from control_plane.errors import InfraError, PolicyViolation
from control_plane.identity.config import IdentityConfig, IssuerConfig
from control_plane.identity.tokens import CachedTokens

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_INTERVAL = 5  # RFC 8628 section 3.2: when the server names none
SCOPE = "openid offline_access mlctl"


@dataclass(frozen=True)
class DeviceCode:
    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str
    interval: int
    expires_in: int

    def __repr__(self) -> str:
        return f"DeviceCode(user_code={self.user_code!r}, verification_uri={self.verification_uri!r})"


def _discovery(issuer: IssuerConfig) -> dict[str, Any]:
    try:
        r = httpx.get(f"{issuer.issuer.rstrip('/')}/.well-known/openid-configuration", timeout=10)
        r.raise_for_status()
        data: dict[str, Any] = r.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise InfraError(f"cannot read the discovery document of {issuer.issuer}: {type(exc).__name__}",
                         hint="is the identity provider up? (`mlctl local up` starts the local one)") from None
    if data.get("issuer") != issuer.issuer:
        raise InfraError(f"{issuer.issuer} publishes issuer {data.get('issuer')!r}",
                         hint="fix the issuer in the identity file to the exact value")
    return data


def _token_request(url: str, data: dict[str, str], auth: tuple[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    try:
        r = httpx.post(url, data=data, auth=auth, timeout=15)
        body: dict[str, Any] = r.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise InfraError(f"token request to {url} failed: {type(exc).__name__}", hint="retry; check the provider") from None
    return r.status_code, body


def _tokens(issuer: IssuerConfig, client_id: str, body: dict[str, Any], grant: str) -> CachedTokens:
    return CachedTokens(
        issuer=issuer.issuer, client_id=client_id, access_token=str(body["access_token"]),
        expires_at=int(time.time()) + int(body.get("expires_in", 300)),
        refresh_token=str(body.get("refresh_token") or ""), grant=grant,
    )


def pick_issuer(config: IdentityConfig, name: str | None) -> IssuerConfig:
    if name is None:
        return config.issuers[0]
    for i in config.issuers:
        if name in (i.name, i.issuer):
            return i
    raise PolicyViolation(f"no issuer {name!r} in {config.source}",
                          hint=f"use one of {', '.join(i.name or i.issuer for i in config.issuers)}")


def start_device(config: IdentityConfig, issuer: IssuerConfig) -> DeviceCode:
    endpoint = _discovery(issuer).get("device_authorization_endpoint")
    if not endpoint:
        raise InfraError(f"{issuer.issuer} offers no device authorization endpoint",
                         hint="enable the device flow for the mlctl client at the identity provider")
    code, body = _token_request(str(endpoint), {"client_id": issuer.cli_client_id, "scope": SCOPE,
                                                "resource": config.audience})
    if code != 200:
        raise PolicyViolation(f"the provider refused the device login: {body.get('error', code)}",
                              hint=f"check that client {issuer.cli_client_id} may use the device flow")
    return DeviceCode(
        device_code=str(body["device_code"]), user_code=str(body["user_code"]),
        verification_uri=str(body["verification_uri"]),
        verification_uri_complete=str(body.get("verification_uri_complete") or body["verification_uri"]),
        interval=int(body.get("interval") or DEFAULT_INTERVAL), expires_in=int(body.get("expires_in", 600)),
    )


def poll_device(issuer: IssuerConfig, device: DeviceCode, *, sleep: Callable[[float], None] = time.sleep,
                first_wait: bool = True) -> CachedTokens:
    """Poll the token endpoint at the server's interval; ``slow_down`` adds 5 s (RFC 8628 3.5)."""
    token_url = str(_discovery(issuer)["token_endpoint"])
    interval = device.interval
    deadline = time.monotonic() + device.expires_in
    wait = first_wait
    while time.monotonic() < deadline:
        if wait:
            sleep(interval)
        wait = True
        code, body = _token_request(token_url, {"grant_type": DEVICE_GRANT, "device_code": device.device_code,
                                                "client_id": issuer.cli_client_id})
        if code == 200:
            return _tokens(issuer, issuer.cli_client_id, body, "device_code")
        error = body.get("error")
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval += 5
            continue
        raise PolicyViolation(f"login failed: {error or code}",
                              hint="run `mlctl login` again and confirm the code in time")
    raise PolicyViolation("login timed out: the code was not confirmed in time", hint="run `mlctl login` again")


def client_credentials(config: IdentityConfig, issuer: IssuerConfig, client_id: str, secret: str) -> CachedTokens:
    token_url = str(_discovery(issuer)["token_endpoint"])
    code, body = _token_request(token_url, {"grant_type": "client_credentials", "scope": "mlctl",
                                            "resource": config.audience}, auth=(client_id, secret))
    if code != 200:
        raise PolicyViolation(f"the provider refused the client credentials: {body.get('error', code)}",
                              hint="check the client id and secret (MLCTL_CLIENT_ID / MLCTL_CLIENT_SECRET)")
    return _tokens(issuer, client_id, body, "client_credentials")


def refresh(config: IdentityConfig, issuer: IssuerConfig, tokens: CachedTokens) -> CachedTokens | None:
    """New tokens from the refresh token, or None when there is none or it no longer works."""
    if not tokens.refresh_token:
        return None
    token_url = str(_discovery(issuer)["token_endpoint"])
    code, body = _token_request(token_url, {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token,
                                            "client_id": tokens.client_id, "resource": config.audience})
    if code != 200:
        return None
    fresh = _tokens(issuer, tokens.client_id, body, tokens.grant)
    if not fresh.refresh_token:
        fresh = CachedTokens(**{**fresh.__dict__, "refresh_token": tokens.refresh_token})
    return fresh
