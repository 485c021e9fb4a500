"""Where the local gateway lives: its state directory under ``$MLCTL_HOME``, its port and URLs,
its admin socket, and the service and colour names a route may carry."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path

from control_plane.drivers.base import COLOURS
from control_plane.emulator import processes
from control_plane.errors import InfraError
from control_plane.settings import current as settings
from control_plane.settings import mlctl_home, state_dir

NAME = "gateway"
HOST = "127.0.0.1"
_SERVICE_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


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


_PREPARED: set[Path] = set()  # prefixes whose sub-directories exist (a switch makes no mkdir)


def gateway_dir() -> Path:
    root = mlctl_home() / "gateway"
    if root not in _PREPARED or not root.is_dir():
        root = state_dir("gateway")
        for sub in ("routes", "logs", "tmp"):
            (root / sub).mkdir(exist_ok=True, mode=0o700)
        _PREPARED.add(root)
    return root


def port() -> int:
    """The gateway's port: MLCTL_GATEWAY_PORT, else the one chosen at first start (kept)."""
    configured = settings().gateway_port
    if configured:
        return configured
    pf = gateway_dir() / "port"
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
    check_service(service)
    return f"{url()}/_colour/{service}/{colour}"


def admin_socket() -> Path:
    return gateway_dir() / "admin.sock"


def check_service(service: str) -> None:
    if not _SERVICE_RE.match(service):
        raise InfraError(
            f"service name {service!r} is not a valid gateway route",
            hint="use lowercase letters, digits and '-'",
        )


def check_colour(colour: str) -> None:
    if colour not in COLOURS:
        raise InfraError(f"unknown colour {colour!r}", hint=f"use one of {', '.join(COLOURS)}")
