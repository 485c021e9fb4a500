"""The local gateway: nginx with the Lua module on loopback, TLS, keep-alive, switches without reload.

Why this design (measured, see docs/gateway.md): a graceful nginx reload took 114 ms (p50) per
switch and, with client keep-alive on, lost requests whose client reused an idle connection as
old workers closed it. Here the configuration is written once, at start, and never reloaded for
a traffic change: the routes are JSON documents in an nginx shared dict that Lua reads per
request (``mlctl_gateway.lua``), written through an admin socket. A switch is one local HTTP call;
the next request already follows it, and no client connection is touched.

One listener, ``https://127.0.0.1:PORT`` (TLS 1.2/1.3 with the local CA's server certificate,
``control_plane.local.ca``), speaks HTTP/1.1 with keep-alive and HTTP/2 (ALPN):

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
"""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from control_plane.drivers.base import COLOURS
from control_plane.errors import InfraError, ToolMissing
from control_plane.local import ca, processes
from control_plane.settings import current as settings
from control_plane.settings import mlctl_home, state_dir

NAME = "gateway"
WORKERS = 1  # loopback on a small machine: one event loop serves thousands of requests/s
HOST = "127.0.0.1"
LUA_MODULE = Path(__file__).with_name("mlctl_gateway.lua")
_SERVICE_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_MODULE_DIRS = ("/usr/lib/nginx/modules", "/usr/share/nginx/modules", "/usr/local/nginx/modules")


@dataclass(frozen=True)
class GatewayInfo:
    url: str
    port: int
    pid: int | None
    ca_cert: str = ""

    @property
    def running(self) -> bool:
        return self.pid is not None

    @property
    def grpc_target(self) -> str:
        return f"{HOST}:{self.port}"


# When the last route change was in force (nginx answered the admin call); bench/cutover.py
# reports it next to the switch latency its clients observe.
last_in_force = 0.0
_PREPARED: set[Path] = set()  # prefixes whose sub-directories exist (a switch makes no mkdir)


def _prefix() -> Path:
    root = mlctl_home() / "gateway"
    if root not in _PREPARED or not root.is_dir():
        root = state_dir("gateway")
        for sub in ("routes", "logs", "tmp"):
            (root / sub).mkdir(exist_ok=True, mode=0o700)
        _PREPARED.add(root)
    return root


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )
    if not found:
        raise ToolMissing(
            "nginx is not installed; the local gateway needs it",
            hint="run `make setup` as root (apt-get install -y nginx libnginx-mod-http-lua)",
        )
    return found


def lua_modules() -> list[Path]:
    """The dynamic modules the gateway loads: the NDK, then the Lua module (Debian's
    ``libnginx-mod-http-lua``, which brings ``lua-resty-core``)."""
    cjson = [*Path("/usr/lib").glob("*/lua/5.1/cjson.so"), *Path("/usr/local/lib/lua/5.1").glob("cjson.so")]
    if not cjson:
        raise ToolMissing(
            "the Lua JSON module (cjson) is not installed; the gateway reads its routes with it",
            hint="apt-get install -y lua-cjson (or run `make setup` as root)",
        )
    for d in _MODULE_DIRS:
        ndk, lua = Path(d) / "ndk_http_module.so", Path(d) / "ngx_http_lua_module.so"
        if lua.exists():
            return [ndk, lua] if ndk.exists() else [lua]
    raise ToolMissing(
        "the nginx Lua module is not installed; the gateway switches traffic with it",
        hint="apt-get install -y libnginx-mod-http-lua (or run `make setup` as root)",
    )


def port() -> int:
    """The gateway's port: MLCTL_GATEWAY_PORT, else the one chosen at first start (kept)."""
    configured = settings().gateway_port
    if configured:
        return configured
    pf = _prefix() / "port"
    with contextlib.suppress(FileNotFoundError, ValueError):
        return int(pf.read_text().strip())
    chosen = processes.free_port(HOST)
    pf.write_text(str(chosen))
    return chosen


def url() -> str:
    return f"https://{HOST}:{port()}"


def grpc_target() -> str:
    """``host:port`` for a gRPC channel (TLS, trust ``ca.ca_cert_path()``)."""
    return f"{HOST}:{port()}"


def colour_url(service: str, colour: str) -> str:
    """Base URL that reaches one colour of ``service`` through the gateway, whatever its weight."""
    _check_service(service)
    return f"{url()}/_colour/{service}/{colour}"


def _admin_socket() -> Path:
    return _prefix() / "admin.sock"


def _main_conf(bench_plain_port: int | None) -> str:
    prefix = _prefix()
    tmp = prefix / "tmp"
    tls = ca.ensure()
    modules = "\n".join(f"load_module {m};" for m in lua_modules())
    plain = (
        # Bench only (bench/cutover.py measures what TLS costs): never rendered otherwise.
        f"listen {HOST}:{bench_plain_port};"
        if bench_plain_port
        else ""
    )
    routed = """
        location = /v2/health/ready { default_type application/json; return 200 '{"ready":true}'; }
        location = /v2/health/live { default_type application/json; return 200 '{"live":true}'; }
        location ~ "^/v2/models/(?<mlctl_service>[a-z0-9][a-z0-9-]{0,62})(?:/|$)" {
            mirror /_mlctl_mirror;
            mirror_request_body on;
            rewrite_by_lua_block { gw.route("http") }
            proxy_pass http://mlctl_http;
            add_header X-Served-By $upstream_addr always;
            add_header X-Request-ID $http_x_request_id always;
            log_by_lua_block { gw.done() }
        }
        location ~ "^/_colour/(?<mlctl_service>[a-z0-9][a-z0-9-]{0,62})/(?<mlctl_pin>blue|green)(?<mlctl_rest>/.*)$" {
            rewrite_by_lua_block { gw.route("http", ngx.var.mlctl_pin) }
            proxy_pass http://mlctl_http;
            add_header X-Served-By $upstream_addr always;
            log_by_lua_block { gw.done() }
        }
        location = /_mlctl_mirror {
            internal;
            rewrite_by_lua_block { gw.mirror() }
            proxy_pass http://mlctl_http$request_uri;
            proxy_next_upstream off;
            # A location's proxy_set_header replaces http{}'s: Connection "" again (upstream keep-alive).
            # The flag tells the model server's request log this is a shadow copy (drift skips it).
            proxy_set_header Connection "";
            proxy_set_header X-Mlctl-Mirror 1;
            proxy_read_timeout 5s;
            log_by_lua_block { gw.done() }
        }
        location /inference.GRPCInferenceService/ {
            rewrite_by_lua_block { gw.route("grpc") }
            grpc_pass grpc://mlctl_grpc;
            grpc_next_upstream error timeout non_idempotent;
            grpc_read_timeout 60s;
            add_header x-served-by $upstream_addr always;
            log_by_lua_block { gw.done() }
        }
        location / { default_type application/json; return 404 '{"error":"no such route at this gateway"}'; }
"""
    return f"""# Written by mlctl (control_plane/drivers/gateway.py) at start; edits are overwritten.
{modules}
worker_processes {WORKERS};
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    client_body_buffer_size 1m;
    client_max_body_size 8m;
    lua_package_path "{LUA_MODULE.parent}/?.lua;;";
    lua_shared_dict mlctl_routes 4m;
    lua_shared_dict mlctl_inflight 1m;
    init_by_lua_block {{ gw = require "mlctl_gateway" }}
    init_worker_by_lua_block {{ gw.init_worker() }}
    # Client keep-alive on: switches never reload nginx, so nothing closes a client's connection.
    keepalive_timeout 75s;
    keepalive_requests 100000;
    # Inference is free of side effects, so a request whose colour refuses the connection may be
    # retried on the other colour (the Lua balancer allows one retry only when the split has one).
    proxy_next_upstream error timeout non_idempotent;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_read_timeout 60s;
    upstream mlctl_http {{
        server 0.0.0.1;   # placeholder: the Lua balancer picks the peer per request
        balancer_by_lua_block {{ gw.balance() }}
        keepalive 64;
        keepalive_timeout 4s;   # below the model servers' 5 s, so they never close one under us
    }}
    upstream mlctl_grpc {{
        server 0.0.0.1;
        balancer_by_lua_block {{ gw.balance() }}
        keepalive 32;
    }}
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:mlctl_tls:1m;
    ssl_session_timeout 1h;
    server {{
        listen {HOST}:{port()} ssl http2;
        ssl_certificate {tls.server_cert};
        ssl_certificate_key {tls.server_key};
        {routed}
    }}
    {"server {" + plain + routed + "}" if plain else ""}
    server {{
        listen unix:{_admin_socket()};
        location / {{ content_by_lua_block {{ gw.admin() }} }}
    }}
}}
"""


def _check_service(service: str) -> None:
    if not _SERVICE_RE.match(service):
        raise InfraError(
            f"service name {service!r} is not a valid gateway route",
            hint="use lowercase letters, digits and '-'",
        )


def _check_colour(colour: str) -> None:
    if colour not in COLOURS:
        raise InfraError(f"unknown colour {colour!r}", hint=f"use one of {', '.join(COLOURS)}")


# -- routes on disk ----------------------------------------------------------------------------


def _record_path(service: str) -> Path:
    return _prefix() / "routes" / f"{service}.json"


@contextlib.contextmanager
def _locked(service: str) -> Iterator[None]:
    """Serialize read-modify-write of one service's route (a release and its reaper may race)."""
    with (_prefix() / "routes" / f"{service}.lock").open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _read(service: str) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(_record_path(service).read_text())
        return data
    except FileNotFoundError:
        return {}


def _write(service: str, doc: dict[str, Any]) -> None:
    path = _record_path(service)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, sort_keys=True))
    os.replace(tmp, path)  # atomic: a reader never sees half a route


def _wire(doc: dict[str, Any]) -> dict[str, Any]:
    """The document the Lua side reads (ports of colours that exist; the mirror if any)."""
    out: dict[str, Any] = {
        "weights": {c: int(w) for c, w in doc.get("weights", {}).items()},
        "http": {c: int(p) for c, p in doc.get("ports", {}).items()},
        "grpc": {c: int(p) for c, p in doc.get("grpc_ports", {}).items()},
    }
    if doc.get("mirror"):
        out["mirror"] = doc["mirror"]
    return out


def routes(service: str) -> dict[str, Any]:
    """``{"weights": {colour: pct}, "ports": {colour: port}, "grpc_ports": {...}, "mirror": ...}``
    for a service ({} if it has no route)."""
    return _read(service)


def _update(service: str, change: Any) -> dict[str, Any]:
    _check_service(service)
    with _locked(service):
        doc = _read(service)
        change(doc)
        # In force first (one call to nginx), then on disk: the rename costs more than the
        # switch on a busy disk. If mlctl dies in between, the release that made the change
        # repeats it on resume (every driver call is idempotent).
        if processes.read_pid(NAME) is None:
            _write(service, doc)
            up()  # a route change must be in force: start the gateway (it loads every route)
        else:
            _push(service, doc)
            global last_in_force
            last_in_force = time.monotonic()
            _write(service, doc)
    return doc


def set_ports(service: str, colour: str, *, http_port: int, grpc_port: int | None = None) -> None:
    """Record that ``colour`` of ``service`` serves on these loopback ports (weights unchanged)."""
    _check_colour(colour)

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
    if not _record_path(service).exists():
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
        _check_colour(c)
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
    _check_colour(colour)
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
    return _read(service).get("mirror") or None


def clear_mirror(service: str) -> None:
    """Stop mirroring the service's requests (idempotent)."""
    if _record_path(service).exists():
        _update(service, lambda doc: doc.pop("mirror", None))


def remove_route(service: str) -> None:
    """Take the service off the gateway (its clients get 404 from now on)."""
    _check_service(service)
    with _locked(service):
        _record_path(service).unlink(missing_ok=True)
        if processes.read_pid(NAME) is not None:
            _admin("DELETE", f"/routes/{service}")


def services() -> list[str]:
    return sorted(p.stem for p in (_prefix() / "routes").glob("*.json"))


# -- the admin socket ------------------------------------------------------------------------


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


def _admin(method: str, path: str, body: dict[str, Any] | None = None, *, timeout: float = 5.0) -> Any:
    payload = json.dumps(body).encode() if body is not None else None
    try:
        with _ADMIN_LOCK:
            status, text = _exchange(_admin_socket(), method, path, payload, timeout)
    except (OSError, http.client.HTTPException) as exc:
        raise InfraError(
            f"the gateway's admin socket did not answer {method} {path}: {exc}",
            hint=f"is the gateway running? `mlctl local status`; see {_prefix() / 'logs' / 'error.log'}",
        ) from exc
    if status == 404 and method == "GET":
        return None
    if status >= 300:
        raise InfraError(
            f"the gateway refused {method} {path}: HTTP {status} {text.strip()[:200]}",
            hint="this is a bug in mlctl's gateway driver; the route on disk is unchanged in nginx",
        )
    return json.loads(text)


def _push(service: str, doc: dict[str, Any]) -> None:
    if doc.get("ports") or doc.get("weights"):
        _admin("PUT", f"/routes/{service}", _wire(doc))
    else:
        _admin("DELETE", f"/routes/{service}")


def reload(*, timeout: float = 10.0) -> int:
    """Load every route on disk into the running gateway (no nginx reload); start it if down.
    Kept for callers of the reload-based gateway: routes are in force as soon as they are set."""
    if processes.read_pid(NAME) is None:
        up(timeout=timeout)
    for service in services():
        _push(service, _read(service))
    return len(services())


def inflight(service: str, colour: str | None = None) -> int:
    """Requests being proxied right now to ``colour`` (or any colour) of ``service``."""
    if processes.read_pid(NAME) is None:
        return 0
    suffix = f"/{colour}" if colour else ""
    return int(_admin("GET", f"/inflight/{service}{suffix}")["inflight"])


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


# -- process ---------------------------------------------------------------------------------


def status() -> GatewayInfo:
    return GatewayInfo(url=url(), port=port(), pid=processes.read_pid(NAME), ca_cert=str(_ca_or_empty()))


def _ca_or_empty() -> Path | str:
    with contextlib.suppress(InfraError):
        return ca.ca_cert_path()
    return ""


def _nginx(*args: str) -> subprocess.CompletedProcess[str]:
    prefix = _prefix()
    return subprocess.run(
        [nginx_binary(), "-p", str(prefix), "-c", str(prefix / "nginx.conf"), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def up(*, timeout: float = 15.0, bench_plain_port: int | None = None) -> GatewayInfo:
    """Start the gateway if it is not running (idempotent), with every route on disk loaded.

    Creates the local CA and the gateway's server certificate on first use.
    """
    current = processes.read_pid(NAME)
    if current is not None:
        return GatewayInfo(url=url(), port=port(), pid=current, ca_cert=str(_ca_or_empty()))
    prefix = _prefix()
    conf = prefix / "nginx.conf"
    tmp = conf.with_suffix(".tmp")
    tmp.write_text(_main_conf(bench_plain_port))
    os.replace(tmp, conf)
    _admin_socket().unlink(missing_ok=True)  # left by a gateway that was killed
    test = _nginx("-t", "-q")
    if test.returncode != 0:
        raise InfraError(
            f"the gateway configuration does not pass `nginx -t`: {test.stderr.strip()[-600:]}",
            hint="check that nginx and libnginx-mod-http-lua come from the same distribution release",
        )
    processes.spawn(NAME, [nginx_binary(), "-p", str(prefix), "-c", str(conf)])
    _wait_admin(timeout=timeout)
    for service in services():
        _push(service, _read(service))
    _wait_listener(timeout=timeout)
    return status()


def _wait_admin(*, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last: str = ""
    while time.monotonic() < deadline:
        if processes.read_pid(NAME) is None:
            break
        if _admin_socket().exists():
            try:
                _admin("GET", "/inflight/mlctl-probe", timeout=1.0)
                return
            except InfraError as exc:
                last = exc.message
        time.sleep(0.02)
    with contextlib.suppress(OSError):
        last = (_prefix() / "logs" / "error.log").read_text(errors="replace").strip().splitlines()[-1][-300:]
    raise InfraError(
        f"the gateway did not start within {timeout:.0f}s: {last}",
        hint=f"see {_prefix() / 'logs' / 'error.log'} and {processes.log_file(NAME)}",
    )


def _wait_listener(*, timeout: float) -> None:
    processes.wait_for_port(HOST, port(), timeout=timeout, name=NAME)


def down() -> bool:
    """Stop the gateway (graceful: SIGQUIT lets the worker finish the requests it holds)."""
    pid = processes.read_pid(NAME)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGQUIT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and processes.is_alive(pid):
            time.sleep(0.05)
    stopped_late = processes.stop(NAME)  # SIGTERM/SIGKILL if it did not quit; clears the pid file
    return pid is not None or stopped_late
