"""The gateway's admin socket: one kept-alive HTTP/1.1 connection over a Unix socket, through
which the Lua side's shared dict of routes is written and its in-flight counters read."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from pathlib import Path
from typing import Any

from control_plane.drivers.gateway_addresses import admin_socket, gateway_dir
from control_plane.errors import InfraError

_ADMIN: dict[Path, socket.socket] = {}  # one kept-alive admin connection per gateway
_ADMIN_LOCK = threading.Lock()


def _exchange(sock_path: Path, method: str, path: str, payload: bytes | None, timeout: float) -> tuple[int, str]:
    """One HTTP/1.1 exchange on the admin socket, the request in a single write.

    Plain sockets, not an HTTP client library: a switch is this one local call, and on a busy
    machine every extra syscall that wakes nginx costs a scheduling round (milliseconds).
    """
    body = payload or b""
    request = (
        f"{method} {path} HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    sock = _ADMIN.pop(sock_path, None)
    for attempt in (1, 2):
        fresh = sock is None
        if sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(str(sock_path))  # blocking: a local socket accepts at once
        sock.settimeout(timeout)
        try:
            sock.sendall(request)
            resp = http.client.HTTPResponse(sock, method=method)
            resp.begin()
            result = resp.status, resp.read().decode(errors="replace")
            keep = not resp.will_close
        except (OSError, http.client.HTTPException):
            sock.close()
            sock = None
            if fresh or attempt == 2:
                raise
            continue  # the kept connection had been closed while idle: admin calls are idempotent
        if keep:
            _ADMIN[sock_path] = sock
        else:
            sock.close()
        return result
    raise AssertionError("unreachable")


def admin(method: str, path: str, body: dict[str, Any] | None = None, *, timeout: float = 5.0) -> Any:
    payload = json.dumps(body).encode() if body is not None else None
    try:
        with _ADMIN_LOCK:
            status, text = _exchange(admin_socket(), method, path, payload, timeout)
    except (OSError, http.client.HTTPException) as exc:
        raise InfraError(
            f"the gateway's admin socket did not answer {method} {path}: {exc}",
            hint=f"is the gateway running? `mlctl local status`; see {gateway_dir() / 'logs' / 'error.log'}",
        ) from exc
    if status == 404 and method == "GET":
        return None
    if status >= 300:
        raise InfraError(
            f"the gateway refused {method} {path}: HTTP {status} {text.strip()[:200]}",
            hint="this is a bug in mlctl's gateway driver; the route on disk is unchanged in nginx",
        )
    return json.loads(text)


def push(service: str, doc: dict[str, Any]) -> None:
    if doc.get("ports") or doc.get("weights"):
        admin("PUT", f"/routes/{service}", wire(doc))
    else:
        admin("DELETE", f"/routes/{service}")


def wire(doc: dict[str, Any]) -> dict[str, Any]:
    """The document the Lua side reads (ports of colours that exist; the mirror if any)."""
    out: dict[str, Any] = {
        "weights": {c: int(w) for c, w in doc.get("weights", {}).items()},
        "http": {c: int(p) for c, p in doc.get("ports", {}).items()},
        "grpc": {c: int(p) for c, p in doc.get("grpc_ports", {}).items()},
    }
    if doc.get("mirror"):
        out["mirror"] = doc["mirror"]
    return out
