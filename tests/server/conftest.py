"""The real API server for tests: uvicorn on a loopback port with TLS from the local CA, in this
test's $MLCTL_HOME, trusting the session's real OpenID provider (``oidc``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn


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


def start_server(*, insecure_dev: bool = False) -> tuple[uvicorn.Server, threading.Thread, str]:
    from control_plane.local.processes import free_port
    from control_plane.server.serve import ServeOptions, config

    port = free_port()
    server = uvicorn.Server(config(ServeOptions(port=port, insecure_dev=insecure_dev)))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, name="mlctl-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("mlctl server did not start")
        time.sleep(0.02)
    return server, thread, f"{'http' if insecure_dev else 'https'}://127.0.0.1:{port}"


@pytest.fixture()
def api(oidc: Any) -> Iterator[Api]:
    from control_plane.local import ca

    server, thread, url = start_server()
    client = httpx.Client(base_url=url, verify=ca.ssl_context(), timeout=30)
    try:
        yield Api(url, client, oidc)
    finally:
        client.close()
        server.should_exit = True
        thread.join(10)
