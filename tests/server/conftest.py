"""The real API server for tests: uvicorn on a loopback port with TLS from the local CA, in this
test's $MLCTL_HOME, trusting the session's real OpenID provider (``oidc``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli_runner import Result, run_mlctl


@dataclass
class Api:
    url: str
    client: httpx.Client
    oidc: Any

    def token(self, user: str) -> str:
        return str(self.oidc.tokens_for(user)["access_token"])

    def call(self, method: str, path: str, token: str | None = None, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return self.client.request(method, path, headers=headers, **kw)


@contextlib.contextmanager
def running(*, insecure_dev: bool = False) -> Iterator[str]:
    from control_plane.emulator.processes import free_port
    from control_plane.server.serve import ServeOptions, in_thread

    with in_thread(ServeOptions(port=free_port(), insecure_dev=insecure_dev)) as url:
        yield url


@pytest.fixture()
def api(oidc: Any) -> Iterator[Api]:
    from control_plane.emulator import ca

    with running() as url, httpx.Client(base_url=url, verify=ca.ssl_context(), timeout=30) as client:
        yield Api(url, client, oidc)


@pytest.fixture()
def signed_fraud(api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """fraud:1, registered and signed by eli (dev tier, asserted: the roles example's actors), so that
    approvals can be asked for; the asserted actor is gone again when the test starts."""
    from control_plane import registry
    from control_plane.access.roles import write_assignments
    from tests.registry.conftest import ROLES, make_model

    write_assignments(ROLES)
    monkeypatch.setenv("MLCTL_ACTOR", "eli")
    registry.register("fraud", "1", make_model(tmp_path / "m"), code_commit="abcdef1")
    registry.sign("fraud", "1")
    monkeypatch.delenv("MLCTL_ACTOR")
    return "fraud:1"


def both(monkeypatch: pytest.MonkeyPatch, api: Api, *args: str) -> tuple[Result, Result]:
    """``mlctl ARGS`` through the server, then the same command on the local store (the server runs
    in the test's $MLCTL_HOME, so both act on one store; the local run acts as the logged-in user's
    name, asserted): what the remote tests compare."""
    through = run_mlctl(*args, in_process=True)
    monkeypatch.delenv("MLCTL_SERVER")
    try:
        here = run_mlctl(*args, in_process=True)
    finally:
        monkeypatch.setenv("MLCTL_SERVER", api.url)
    return through, here
