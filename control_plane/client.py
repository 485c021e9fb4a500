"""The CLI's side of ``mlctl server``: with ``MLCTL_SERVER`` (or ``--server``) set, commands call
the API instead of the local store, with the bearer token of ``mlctl login``.

The server's certificate is checked against ``MLCTL_SERVER_CA`` (a PEM bundle) or, without it, the
local CA (``mlctl local up``) for a loopback server and the system trust store otherwise. An API
error comes back as the same message, fix and exit code the local command would give.
"""

from __future__ import annotations

import ipaddress
import ssl
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from control_plane.errors import InfraError, MlctlError, PolicyViolation, UsageError

__all__ = ["ApiClient", "Remote", "RemoteError", "remote"]


class RemoteError(MlctlError):
    """An error the server answered with: its message, fix and exit code, as the CLI prints them."""

    def __init__(self, message: str, *, hint: str | None, exit_code: int, kind: str, status: int) -> None:
        super().__init__(message, hint=hint, exit_code=exit_code)
        self.kind = kind
        self.status = status


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (names other than localhost are not resolved)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ApiClient:
    def __init__(self, base_url: str, *, ca_file: Path | None = None, timeout: float = 60.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise UsageError(f"MLCTL_SERVER={base_url!r} is not an http(s) URL", hint="e.g. https://127.0.0.1:8443")
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            raise PolicyViolation(f"{base_url} is plain HTTP to another host: the token would travel in clear",
                                  hint="use https:// (mlctl server serves TLS by default)")
        self.base_url = base_url.rstrip("/")
        self._verify = self._trust(parts.scheme, parts.hostname, ca_file)
        self._timeout = timeout

    @staticmethod
    def _trust(scheme: str, host: str, ca_file: Path | None) -> ssl.SSLContext | bool:
        if scheme == "http":
            return True
        if ca_file is not None:
            if not ca_file.is_file():
                raise UsageError(f"MLCTL_SERVER_CA {ca_file}: no such file", hint="give the server CA's PEM bundle")
            return ssl.create_default_context(cafile=str(ca_file))
        if is_loopback(host):
            from control_plane.emulator import ca

            return ca.ssl_context()
        return ssl.create_default_context()

    @staticmethod
    def _token() -> str:
        from control_plane import identity
        from control_plane.identity import tokens

        cached = tokens.load()
        if cached is None:
            raise PolicyViolation("MLCTL_SERVER is set and you are not logged in",
                                  hint="mlctl login (or mlctl login --client-credentials for a workload)")
        if cached.expiring:
            verifier = identity.verifier()
            issuer = verifier.config.issuer(cached.issuer) if verifier is not None else None
            if verifier is not None and issuer is not None:
                from control_plane.identity import login

                fresh = login.refresh(verifier.config, issuer, cached)
                if fresh is not None:
                    tokens.save(fresh)
                    return fresh.access_token
        return cached.access_token

    def call(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        headers = {"Authorization": f"Bearer {self._token()}"}
        try:
            with httpx.Client(base_url=self.base_url, verify=self._verify, timeout=self._timeout) as client:
                r = client.request(method, path, json=json, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise InfraError(f"the mlctl server at {self.base_url} does not answer: {type(exc).__name__}",
                             hint="is `mlctl server` running? check MLCTL_SERVER") from None
        if r.status_code >= 400:
            try:
                err = r.json()["error"]
            except (ValueError, KeyError, TypeError):
                raise InfraError(f"the mlctl server answered {r.status_code} without an error body",
                                 hint=f"check the server's log ({self.base_url})") from None
            raise RemoteError(str(err.get("message")), hint=err.get("hint"), exit_code=int(err.get("exit_code", 1)),
                              kind=str(err.get("kind", "")), status=r.status_code)
        return r.json()


class Remote:
    """The verbs the CLI sends to ``mlctl server``, returning the same views as the local service
    functions (built from the API's JSON, which has the same keys), so a command renders and exits
    the same way whether it ran here or on the server."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api

    def whoami(self) -> Any:
        from control_plane.identity import Actor, VerifiedIdentity
        from control_plane.services.operations import IdentityView

        d = self.api.call("GET", "/v1/whoami")
        verified = None
        if d.get("source") == "verified":
            verified = VerifiedIdentity(issuer=d["issuer"], subject=d["subject"], kind=d["kind"], client_id=d["client"],
                                        roles=list(d["roles"]), groups=list(d.get("groups", [])),
                                        name=d.get("name", d["subject"]),
                                        expires_at=int(time.time()) + int(d.get("expires_in", 0)))
        return IdentityView(Actor(d["actor"], d["source"], list(d["roles"]), verified))

    def approve(self, name: str, version: str, env: str) -> Any:
        from control_plane.approvals import Decision
        from control_plane.services.approvals import ApprovalView

        d = self.api.call("POST", f"/v1/models/{name}/{version}/approvals", json={"env": env})
        return ApprovalView(Decision(**d))

    def release_status(self, service: str) -> Any:
        from control_plane.services.release_views import ReleaseView, status_exit_code

        d = self.api.call("GET", f"/v1/releases/{service}")
        return ReleaseView(d, d["state"], status_exit_code(d))

    def release_list(self, **filters: Any) -> Any:
        from control_plane.services.release_views import ReleaseListView

        params = {k: v for k, v in filters.items() if v is not None}
        return ReleaseListView("releases", list(self.api.call("GET", "/v1/releases", params=params)))

    def release_start(self, model: str, env: str, config: dict[str, Any], service: str | None,
                      *, poll: float = 1.0, on_state: Any = None) -> Any:
        """Start on the server (recorded and checked there), then follow it until it ends or pauses."""
        started = self.api.call("POST", "/v1/releases", json={"model": model, "env": env, "service": service,
                                                              "config": config})
        return self._follow(str(started["service"]), poll, on_state)

    def release_verb(self, service: str, verb: str, *, poll: float = 1.0, on_state: Any = None) -> Any:
        self.api.call("POST", f"/v1/releases/{service}/{verb}")
        return self._follow(service, poll, on_state)

    def _follow(self, service: str, poll: float, on_state: Any) -> Any:
        from control_plane.errors import EXIT_IN_PROGRESS

        last = None
        while True:
            view = self.release_status(service)
            if on_state is not None and view.state != last:
                on_state(view.state)
                last = view.state
            if view.exit_code != EXIT_IN_PROGRESS:
                return view
            time.sleep(poll)


def remote() -> Remote | None:
    """The API server the CLI acts through (``MLCTL_SERVER``), or None to act on the local store."""
    from control_plane.settings import current as settings

    s = settings()
    if not s.server:
        return None
    return Remote(ApiClient(s.server, ca_file=s.server_ca))
