"""The gateway's nginx configuration, rendered once at start (never reloaded for a traffic change),
and the nginx binary and Lua modules it needs."""

from __future__ import annotations

import shutil
from pathlib import Path

from control_plane.drivers.gateway_addresses import HOST, admin_socket, gateway_dir, port
from control_plane.emulator import ca
from control_plane.errors import ToolMissing

WORKERS = 1  # loopback on a small machine: one event loop serves thousands of requests/s
LUA_MODULE = Path(__file__).with_name("mlctl_gateway.lua")
_MODULE_DIRS = ("/usr/lib/nginx/modules", "/usr/share/nginx/modules", "/usr/local/nginx/modules")


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


def main_conf(bench_plain_port: int | None) -> str:
    prefix = gateway_dir()
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
        listen unix:{admin_socket()};
        location / {{ content_by_lua_block {{ gw.admin() }} }}
    }}
}}
"""
