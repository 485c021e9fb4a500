"""The local gateway: nginx with the Lua module on loopback, TLS, keep-alive, switches without reload.

Why this design (measured, see docs/gateway.md): a graceful nginx reload took 114 ms (p50) per
switch and, with client keep-alive on, lost requests whose client reused an idle connection as
old workers closed it. Here the configuration is written once, at start, and never reloaded for
a traffic change: the routes are JSON documents in an nginx shared dict that Lua reads per
request (``mlctl_gateway.lua``), written through an admin socket. A switch is one local HTTP call;
the next request already follows it, and no client connection is touched.

One listener, ``https://127.0.0.1:PORT`` (TLS 1.2/1.3 with the local CA's server certificate,
``control_plane.emulator.ca``), speaks HTTP/1.1 with keep-alive and HTTP/2 (ALPN):

- ``/v2/models/<service>/...``: V2 REST, split between the colours by the service's weights;
  each answer carries ``X-Served-By`` (the model server's loopback address) and ``X-Request-ID``.
- ``/inference.GRPCInferenceService/<Method>``: V2 gRPC, with the same weights, to the colours'
  gRPC ports. The method path names no model, so the call carries the metadata
  ``mlctl-service: <service>``; answers carry ``x-served-by`` in their initial metadata.
- ``/_colour/<service>/<colour>/...``: one colour only, whatever its weight (smoke tests and
  pre-promotion analysis reach a candidate before it has any traffic, through TLS like clients).

Upstream connections (gateway → model servers, loopback) are kept alive too. A request whose
colour refuses the connection is retried once on the other colour of the split, never after an
HTTP answer (analysis must see errors).

Control API (module functions; the admin socket ``$MLCTL_HOME/gateway/admin.sock`` sits in a
0700 directory, so only this user can change routes):

- ``set_ports(service, colour, http_port=, grpc_port=)``: a colour exists (no traffic change);
- ``set_weights(service, weights)``: the split; in force when it returns;
- ``set_mirror(service, colour, percent)`` / ``clear_mirror(service)``: send a copy of
  ``percent`` % of the service's REST requests to ``colour`` (nginx ``mirror``, answer
  discarded, the client never waits for it); the client's request and its copy carry the same
  ``X-Request-ID`` (the client's own, or one the gateway assigns), so answers can be paired;
- ``forget_colour``, ``remove_route``, ``routes``, ``inflight``, ``wait_drained``.

Each service's route is also kept on disk (``gateway/routes/<service>.json``), the source of
truth: ``up()`` loads every route into a freshly started nginx, so a restart changes nothing.

The gateway's parts: ``gateway_addresses`` (state directory, port, URLs, names),
``gateway_conf`` (the nginx configuration), ``gateway_store`` (routes on disk),
``gateway_admin`` (the admin socket) and ``gateway_process`` (start and stop). This module is the
control API over them, and the one name callers import.
"""

from __future__ import annotations

import time
from typing import Any

from control_plane.drivers.gateway_addresses import (
    HOST,
    NAME,
    GatewayInfo,
    admin_socket,
    check_colour,
    check_service,
    colour_url,
    gateway_dir,
    grpc_target,
    port,
    url,
)
from control_plane.drivers.gateway_admin import admin, push
from control_plane.drivers.gateway_conf import LUA_MODULE, WORKERS, lua_modules, nginx_binary
from control_plane.drivers.gateway_process import down, nginx, status, up
from control_plane.drivers.gateway_store import locked, read, record_path, services, write
from control_plane.emulator import processes
from control_plane.errors import InfraError

# The names tests and benchmarks reach for (the admin call, the socket, `nginx -t`), as before.
_admin, _admin_socket, _nginx, _prefix = admin, admin_socket, nginx, gateway_dir

__all__ = [
    "HOST", "LUA_MODULE", "NAME", "WORKERS", "GatewayInfo", "clear_mirror", "colour_url", "down", "forget_colour",
    "grpc_target", "inflight", "lua_modules", "mirror", "nginx_binary", "port", "reload", "remove_route", "routes",
    "services", "set_mirror", "set_ports", "set_weights", "status", "up", "url", "wait_drained", "write_route",
]

# When the last route change was in force (nginx answered the admin call); bench/cutover.py
# reports it next to the switch latency its clients observe.
last_in_force = 0.0


def routes(service: str) -> dict[str, Any]:
    """``{"weights": {colour: pct}, "ports": {colour: port}, "grpc_ports": {...}, "mirror": ...}``
    for a service ({} if it has no route)."""
    return read(service)


def _update(service: str, change: Any) -> dict[str, Any]:
    check_service(service)
    with locked(service):
        doc = read(service)
        change(doc)
        # In force first (one call to nginx), then on disk: the rename costs more than the
        # switch on a busy disk. If mlctl dies in between, the release that made the change
        # repeats it on resume (every driver call is idempotent).
        if processes.read_pid(NAME) is None:
            write(service, doc)
            up()  # a route change must be in force: start the gateway (it loads every route)
        else:
            push(service, doc)
            global last_in_force
            last_in_force = time.monotonic()
            write(service, doc)
    return doc


def set_ports(service: str, colour: str, *, http_port: int, grpc_port: int | None = None) -> None:
    """Record that ``colour`` of ``service`` serves on these loopback ports (weights unchanged)."""
    check_colour(colour)

    def change(doc: dict[str, Any]) -> None:
        doc.setdefault("weights", {})
        doc.setdefault("ports", {})[colour] = http_port
        grpc = doc.setdefault("grpc_ports", {})
        if grpc_port:
            grpc[colour] = grpc_port
        else:
            grpc.pop(colour, None)

    _update(service, change)


def forget_colour(service: str, colour: str) -> None:
    """``colour`` is gone: drop its ports (refused while it has traffic or is mirrored to)."""
    if not record_path(service).exists():
        return

    def change(doc: dict[str, Any]) -> None:
        if doc.get("weights", {}).get(colour, 0) > 0:
            raise InfraError(f"{service}/{colour} still has traffic", hint="move traffic away first")
        if (doc.get("mirror") or {}).get("colour") == colour:
            doc.pop("mirror", None)
        # Its weight stays (at 0): `traffic()` keeps reporting the split the release decided.
        doc.get("ports", {}).pop(colour, None)
        doc.get("grpc_ports", {}).pop(colour, None)

    _update(service, change)


def set_weights(service: str, weights: dict[str, int]) -> None:
    """Set the split; when this returns, every new request (REST and gRPC) follows it."""
    live = {c: int(w) for c, w in weights.items()}
    if sum(w for w in live.values() if w > 0) == 0:
        raise InfraError(
            f"traffic split for {service} sends no traffic anywhere",
            hint="give at least one colour a non-zero weight",
        )

    def change(doc: dict[str, Any]) -> None:
        ports = doc.get("ports", {})
        missing = [c for c, w in live.items() if w > 0 and c not in ports]
        if missing:
            raise InfraError(
                f"cannot route {service} to {', '.join(missing)}: no port recorded for it",
                hint="apply the colour first (the driver records its ports)",
            )
        doc["weights"] = {c: w for c, w in live.items() if w > 0 or c in ports}

    _update(service, change)


def write_route(
    service: str, weights: dict[str, int], ports: dict[str, int], grpc_ports: dict[str, int] | None = None
) -> None:
    """Replace the service's weights and ports (every deployed colour's, routed or not) and put
    them in force at once."""
    for c in weights:
        check_colour(c)
    if not any(w > 0 for w in weights.values()):
        raise InfraError(
            f"traffic split for {service} sends no traffic anywhere",
            hint="give at least one colour a non-zero weight",
        )

    def change(doc: dict[str, Any]) -> None:
        doc["weights"] = dict(weights)
        doc["ports"] = dict(ports)
        if grpc_ports is not None:
            doc["grpc_ports"] = dict(grpc_ports)
        if (doc.get("mirror") or {}).get("colour") not in doc["ports"]:
            doc.pop("mirror", None)

    _update(service, change)


def set_mirror(service: str, colour: str, percent: float) -> None:
    """Mirror ``percent`` % (0 < P ≤ 100) of the service's REST requests to ``colour``: the
    copy's answer is discarded, the client is answered by the colour its weights chose, and both
    upstreams see the same ``X-Request-ID``."""
    check_colour(colour)
    if not 0 < percent <= 100:
        raise InfraError(f"mirror percent {percent} is out of range", hint="use 0 < percent <= 100")

    def change(doc: dict[str, Any]) -> None:
        if colour not in doc.get("ports", {}):
            raise InfraError(
                f"cannot mirror {service} to {colour}: it is not deployed", hint="apply the colour first"
            )
        doc["mirror"] = {"colour": colour, "percent": float(percent)}

    _update(service, change)


def mirror(service: str) -> dict[str, Any] | None:
    """The service's mirror (``{"colour", "percent"}``), or None."""
    return read(service).get("mirror") or None


def clear_mirror(service: str) -> None:
    """Stop mirroring the service's requests (idempotent)."""
    if record_path(service).exists():
        _update(service, lambda doc: doc.pop("mirror", None))


def remove_route(service: str) -> None:
    """Take the service off the gateway (its clients get 404 from now on)."""
    check_service(service)
    with locked(service):
        record_path(service).unlink(missing_ok=True)
        if processes.read_pid(NAME) is not None:
            admin("DELETE", f"/routes/{service}")


def reload(*, timeout: float = 10.0) -> int:
    """Load every route on disk into the running gateway (no nginx reload); start it if down.
    Kept for callers of the reload-based gateway: routes are in force as soon as they are set."""
    if processes.read_pid(NAME) is None:
        up(timeout=timeout)
    for service in services():
        push(service, read(service))
    return len(services())


def inflight(service: str, colour: str | None = None) -> int:
    """Requests being proxied right now to ``colour`` (or any colour) of ``service``."""
    if processes.read_pid(NAME) is None:
        return 0
    suffix = f"/{colour}" if colour else ""
    return int(admin("GET", f"/inflight/{service}{suffix}")["inflight"])


def wait_drained(service: str | None = None, colour: str | None = None, *, timeout: float = 30.0) -> bool:
    """Wait until no request is in flight to ``colour`` of ``service`` (all services if None).

    A colour is stopped only after this: a request that chose it just before a switch finishes.
    Zero must be seen twice 50 ms apart (a request counts itself a few µs after choosing).
    """
    deadline = time.monotonic() + timeout
    names = [service] if service else services()
    zeros = 0
    while time.monotonic() < deadline:
        busy = sum(inflight(s, colour) for s in names)
        zeros = zeros + 1 if busy == 0 else 0
        if zeros >= 2:
            return True
        time.sleep(0.05)
    return False
