"""The local gateway: one nginx on loopback with a weighted upstream per service.

nginx runs with its own prefix under ``$MLCTL_HOME/gateway`` (config, logs, pid), its master
process detached from mlctl (``local.processes``), so serving survives the control plane. A
traffic change rewrites the service's config file, checks the whole config (``nginx -t``) and
reloads gracefully (SIGHUP): new workers take new connections with the new weights while old
workers finish the requests they hold, so no request is dropped. Every config carries a
generation number served at ``/__mlctl/generation``; ``reload`` returns only once the gateway
answers with the new generation, i.e. the change is in force, which is what the switch-latency
bench measures.

The gateway port is chosen once (free loopback port, or ``MLCTL_GATEWAY_PORT``) and kept in
``gateway/port`` so clients find the service at the same address across restarts.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from control_plane.errors import InfraError, ToolMissing
from control_plane.local import processes
from control_plane.settings import state_dir

NAME = "gateway"
WORKERS = 1  # one worker is plenty on loopback, and keeps the reload hand-over easy to observe
HOST = "127.0.0.1"
# Loopback only: never route our own probes through an HTTP proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_SERVICE_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


@dataclass(frozen=True)
class GatewayInfo:
    url: str
    port: int
    pid: int | None

    @property
    def running(self) -> bool:
        return self.pid is not None


def _prefix() -> Path:
    root = state_dir("gateway")
    for sub in ("conf.d", "logs", "tmp"):
        (root / sub).mkdir(exist_ok=True, mode=0o700)
    return root


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )
    if not found:
        raise ToolMissing(
            "nginx is not installed; the local gateway needs it",
            hint="run `make setup` as root (apt-get install -y nginx), or install nginx yourself",
        )
    return found


def port() -> int:
    """The gateway's port: MLCTL_GATEWAY_PORT, else the one chosen at first start (kept)."""
    env = os.environ.get("MLCTL_GATEWAY_PORT")
    if env:
        return int(env)
    pf = _prefix() / "port"
    with contextlib.suppress(FileNotFoundError, ValueError):
        return int(pf.read_text().strip())
    chosen = processes.free_port(HOST)
    pf.write_text(str(chosen))
    return chosen


def url() -> str:
    return f"http://{HOST}:{port()}"


def _generation_file() -> Path:
    return _prefix() / "generation"


def _generation() -> int:
    try:
        return int(_generation_file().read_text().strip())
    except (FileNotFoundError, ValueError):
        return 0


def _main_conf(generation: int) -> str:
    prefix = _prefix()
    tmp = prefix / "tmp"
    return f"""# Written by mlctl (control_plane/drivers/gateway.py); edits are overwritten.
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
    # One request per client connection. A graceful reload closes the old workers' idle
    # keep-alive connections, and a client that reuses one at that instant loses its request
    # (measured: 4 of 10,515 over three reloads). With no client keep-alive every request
    # arrives on a fresh connection through the listening socket the new workers inherit, so a
    # cutover is lossless for every client, retrying or not. Upstream keep-alive stays on.
    keepalive_timeout 0;
    # Inference is free of side effects, so a request whose colour refuses the connection may be
    # retried on the other colour of the split (never on an HTTP error: analysis must see those).
    proxy_next_upstream error timeout non_idempotent;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_read_timeout 60s;
    server {{
        listen {HOST}:{port()};
        location = /__mlctl/generation {{ default_type text/plain; return 200 "{generation}"; }}
        location = /v2/health/ready {{ default_type application/json; return 200 '{{"ready":true}}'; }}
        include {prefix}/conf.d/*.locations;
        location / {{ default_type application/json; return 404 '{{"error":"no such service at this gateway"}}'; }}
    }}
    include {prefix}/conf.d/*.upstream;
}}
"""


def _service_files(service: str) -> tuple[Path, Path, Path]:
    d = _prefix() / "conf.d"
    return d / f"{service}.upstream", d / f"{service}.locations", d / f"{service}.json"


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)  # atomic: nginx never reads half a file


def _check_service(service: str) -> None:
    if not _SERVICE_RE.match(service):
        raise InfraError(
            f"service name {service!r} is not a valid gateway route",
            hint="use lowercase letters, digits and '-'",
        )


def routes(service: str) -> dict[str, Any]:
    """``{"weights": {colour: pct}, "ports": {colour: port}, "mirror"?: {...}}`` for a service ({} if none)."""
    _, _, record = _service_files(service)
    try:
        data: dict[str, Any] = json.loads(record.read_text())
        return data
    except FileNotFoundError:
        return {}


def write_route(service: str, weights: dict[str, int], ports: dict[str, int]) -> None:
    """Write the service's upstream (colours with weight > 0) and its V2 location.

    A mirror set with :func:`set_mirror` stays in force across weight changes."""
    _check_service(service)
    record: dict[str, Any] = {"weights": weights, "ports": {c: ports[c] for c in weights if c in ports}}
    mirror = routes(service).get("mirror")
    if mirror:
        record["mirror"] = mirror
    _render_route(service, record)


def set_mirror(service: str, colour: str, mirror_port: int, percent: int) -> None:
    """Copy ``percent`` % of the service's requests to ``colour`` (at ``mirror_port``).

    nginx's ``mirror`` sends the copy as a subrequest and throws its answer away, so clients only
    ever see production's response. Both copies carry the gateway's ``X-Request-ID``, which is how
    a shadow analysis joins the candidate's answer to production's. Takes effect at the next
    :func:`reload`."""
    _check_service(service)
    if not 0 < percent <= 100:
        raise InfraError(f"mirror percent {percent} must be 1..100", hint="e.g. --mirror-percent 10")
    record: dict[str, Any] = dict(routes(service))
    if not record.get("weights"):
        raise InfraError(f"{service} has no route to mirror", hint="release a version first")
    record["mirror"] = {"colour": colour, "port": int(mirror_port), "percent": int(percent)}
    _render_route(service, record)


def clear_mirror(service: str) -> bool:
    """Stop mirroring (idempotent); True when a mirror was removed. Takes effect at :func:`reload`."""
    record: dict[str, Any] = dict(routes(service))
    if not record.get("mirror"):
        return False
    record.pop("mirror")
    _render_route(service, record)
    return True


def mirror(service: str) -> dict[str, Any] | None:
    """``{"colour", "port", "percent"}`` of the mirror in force for ``service``, or None."""
    found: dict[str, Any] | None = routes(service).get("mirror")
    return found


def _render_route(service: str, record: dict[str, Any]) -> None:
    upstream, locations, record_file = _service_files(service)
    weights: dict[str, int] = record["weights"]
    ports: dict[str, int] = record["ports"]
    servers = "\n".join(
        f"    server {HOST}:{ports[c]} weight={w} max_fails=0;" for c, w in sorted(weights.items()) if w > 0
    )
    if not servers:
        raise InfraError(
            f"traffic split for {service} sends no traffic anywhere",
            hint="give at least one colour a non-zero weight",
        )
    up = f"mlctl_{service.replace('-', '_')}"
    upstream_text = f"upstream {up} {{\n{servers}\n    keepalive 32;\n}}\n"
    # The gateway names every request (``$request_id``, 128 random bits) and tells the model
    # server and the client. A location with its own proxy_set_header inherits none from http{},
    # so upstream keep-alive's empty Connection header is repeated here.
    # X-Served-By names the model server that answered (loopback address), so clients, tests and
    # the switch-latency bench can see where each request went.
    common = (
        'proxy_set_header Connection ""; proxy_set_header X-Request-ID $request_id; '
        "add_header X-Request-ID $request_id always; add_header X-Served-By $upstream_addr always;"
    )
    mirror_directive = ""
    mirror_location = ""
    m = record.get("mirror")
    if m:
        var = f"$mlctl_mirror_{service.replace('-', '_')}"
        upstream_text += f"upstream {up}_mirror {{\n    server {HOST}:{int(m['port'])} max_fails=0;\n    keepalive 8;\n}}\n"
        gate = ""
        if int(m["percent"]) < 100:
            # split_clients hashes the random request id: a uniform P % sample of requests.
            upstream_text += (
                f'split_clients "${{request_id}}" {var} {{\n    {int(m["percent"])}% 1;\n    * 0;\n}}\n'
            )
            gate = f" if ({var} = 0) {{ return 204; }}"
        mirror_directive = f" mirror /__mlctl/mirror/{service};"
        # internal: only the mirror subrequest reaches it. Its answer is discarded by nginx; a slow
        # or failing candidate costs production nothing beyond a short timeout, and is never retried
        # on production (a single-server upstream of its own).
        mirror_location = (
            f"location = /__mlctl/mirror/{service} {{ internal;{gate} "
            'proxy_set_header Connection ""; proxy_set_header X-Request-ID $request_id; '
            'proxy_set_header X-Mlctl-Mirror "1"; proxy_next_upstream off; proxy_read_timeout 5s; '
            f"proxy_pass http://{up}_mirror$request_uri; }}\n"
        )
    _write(upstream, upstream_text)
    _write(
        locations,
        f"location /v2/models/{service}/ {{{mirror_directive} {common} proxy_pass http://{up}; }}\n"
        f"location = /v2/models/{service} {{ {common} proxy_pass http://{up}; }}\n" + mirror_location,
    )
    _write(record_file, json.dumps(record, sort_keys=True))


def remove_route(service: str) -> None:
    for f in _service_files(service):
        f.unlink(missing_ok=True)


def _nginx(*args: str) -> subprocess.CompletedProcess[str]:
    prefix = _prefix()
    return subprocess.run(
        [nginx_binary(), "-p", str(prefix), "-c", str(prefix / "nginx.conf"), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def _render_and_test() -> int:
    generation = _generation() + 1
    prefix = _prefix()
    _write(prefix / "nginx.conf", _main_conf(generation))
    test = _nginx("-t", "-q")
    if test.returncode != 0:
        raise InfraError(
            f"the gateway configuration does not pass `nginx -t`: {test.stderr.strip()}",
            hint=f"inspect {prefix}/conf.d; remove a broken service file and retry",
        )
    _generation_file().write_text(str(generation))
    return generation


def status() -> GatewayInfo:
    return GatewayInfo(url=url(), port=port(), pid=processes.read_pid(NAME))


def up(*, timeout: float = 15.0) -> GatewayInfo:
    """Start the gateway if it is not running (idempotent)."""
    current = processes.read_pid(NAME)
    if current is not None:
        return GatewayInfo(url=url(), port=port(), pid=current)
    generation = _render_and_test()
    prefix = _prefix()
    pid = processes.spawn(NAME, [nginx_binary(), "-p", str(prefix), "-c", str(prefix / "nginx.conf")])
    _wait_generation(generation, timeout=timeout)
    return GatewayInfo(url=url(), port=port(), pid=pid)


def down() -> bool:
    """Stop the gateway (graceful: SIGQUIT lets workers finish their requests)."""
    pid = processes.read_pid(NAME)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGQUIT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and processes.is_alive(pid):
            time.sleep(0.05)
    stopped_late = processes.stop(NAME)  # SIGTERM/SIGKILL if it did not quit; clears the pid file
    return pid is not None or stopped_late


def reload(*, timeout: float = 10.0) -> int:
    """Apply the files on disk: test, SIGHUP the master, wait until the new config answers."""
    pid = processes.read_pid(NAME)
    if pid is None:
        up(timeout=timeout)
        return _generation()
    generation = _render_and_test()
    os.kill(pid, signal.SIGHUP)
    _wait_generation(generation, timeout=timeout)
    # The new configuration answers; now make sure it is the only one taking new requests.
    _wait_old_workers_stop_accepting(pid, timeout=timeout)
    return generation


def _workers(master: int) -> tuple[int, int]:
    """(accepting, shutting down) nginx workers of ``master``, from their titles in /proc.

    After a reload the master starts the new workers *before* it tells the old ones to quit,
    so for a moment both accept connections; an old worker retitles itself "shutting down"
    just before it closes its listening sockets.
    """
    accepting = draining = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) != master:
                continue
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if b"shutting down" in cmdline:
            draining += 1
        elif b"worker process" in cmdline:
            accepting += 1
    return accepting, draining


def _shutting_down_workers(master: int) -> int:
    return _workers(master)[1]


def _wait_old_workers_stop_accepting(master: int, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _workers(master)[0] <= WORKERS:
            return
        time.sleep(0.005)


def wait_drained(*, timeout: float = 30.0) -> bool:
    """Wait until workers of earlier configurations have finished their requests and exited.

    A colour must not be stopped while an old worker may still be proxying a request to it.
    """
    pid = processes.read_pid(NAME)
    if pid is None:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _shutting_down_workers(pid) == 0:
            return True
        time.sleep(0.05)
    return False


def _wait_generation(generation: int, *, timeout: float) -> None:
    probe = f"{url()}/__mlctl/generation"
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            with _OPENER.open(probe, timeout=1) as resp:
                last = resp.read().decode()
                if last.strip() == str(generation):
                    return
        except OSError as exc:
            last = str(exc)
        time.sleep(0.01)
    raise InfraError(
        f"the gateway did not take configuration generation {generation} within {timeout:.0f}s ({last})",
        hint=f"see {_prefix() / 'logs' / 'error.log'} and {processes.log_file(NAME)}",
    )
