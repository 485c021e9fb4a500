"""Start and stop the gateway's nginx: write the configuration, check it with ``nginx -t``, spawn
it, load every route on disk into it, wait for the listener; stop it gracefully."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from control_plane.drivers.gateway_addresses import (
    HOST,
    NAME,
    GatewayInfo,
    admin_socket,
    gateway_dir,
    port,
    url,
)
from control_plane.drivers.gateway_admin import admin, push
from control_plane.drivers.gateway_conf import main_conf, nginx_binary
from control_plane.drivers.gateway_store import read, services
from control_plane.emulator import ca, processes
from control_plane.errors import InfraError


def status() -> GatewayInfo:
    return GatewayInfo(url=url(), port=port(), pid=processes.read_pid(NAME), ca_cert=str(_ca_or_empty()))


def _ca_or_empty() -> Path | str:
    with contextlib.suppress(InfraError):
        return ca.ca_cert_path()
    return ""


def nginx(*args: str) -> subprocess.CompletedProcess[str]:
    prefix = gateway_dir()
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
    prefix = gateway_dir()
    conf = prefix / "nginx.conf"
    tmp = conf.with_suffix(".tmp")
    tmp.write_text(main_conf(bench_plain_port))
    os.replace(tmp, conf)
    admin_socket().unlink(missing_ok=True)  # left by a gateway that was killed
    test = nginx("-t", "-q")
    if test.returncode != 0:
        raise InfraError(
            f"the gateway configuration does not pass `nginx -t`: {test.stderr.strip()[-600:]}",
            hint="check that nginx and libnginx-mod-http-lua come from the same distribution release",
        )
    processes.spawn(NAME, [nginx_binary(), "-p", str(prefix), "-c", str(conf)])
    _wait_admin(timeout=timeout)
    for service in services():
        push(service, read(service))
    _wait_listener(timeout=timeout)
    return status()


def _wait_admin(*, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last: str = ""
    while time.monotonic() < deadline:
        if processes.read_pid(NAME) is None:
            break
        if admin_socket().exists():
            try:
                admin("GET", "/inflight/mlctl-probe", timeout=1.0)
                return
            except InfraError as exc:
                last = exc.message
        time.sleep(0.02)
    with contextlib.suppress(OSError):
        last = (gateway_dir() / "logs" / "error.log").read_text(errors="replace").strip().splitlines()[-1][-300:]
    raise InfraError(
        f"the gateway did not start within {timeout:.0f}s: {last}",
        hint=f"see {gateway_dir() / 'logs' / 'error.log'} and {processes.log_file(NAME)}",
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
