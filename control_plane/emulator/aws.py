"""The AWS emulator (moto server) that plays me-central-1 for the local blueprint.

Its endpoint comes from the blueprint's ``emulator.endpoint``; ``MLCTL_EMULATOR_ENDPOINT``
overrides it (tests use a free port). Credentials are moto's dummies; they are set only for
processes we start against the emulator, never globally.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from blueprints.conventions import DUMMY_CREDENTIALS, emulator_endpoint
from blueprints.schema import Environment
from control_plane.emulator import processes
from control_plane.errors import InfraError, ToolMissing

NAME = "aws-emulator"


@dataclass(frozen=True)
class EmulatorInfo:
    endpoint: str
    pid: int | None

    @property
    def running(self) -> bool:
        return self.pid is not None


endpoint_for = emulator_endpoint  # the name the control plane has always used


def _moto_server() -> str:
    candidate = Path(sys.executable).parent / "moto_server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("moto_server")
    if not found:
        raise ToolMissing("moto_server is not installed", hint="run `make setup` (installs moto[server])")
    return found


def status(env: Environment | None = None) -> EmulatorInfo:
    return EmulatorInfo(endpoint=endpoint_for(env), pid=processes.read_pid(NAME))


def up(env: Environment | None = None, *, timeout: float = 30.0) -> EmulatorInfo:
    """Start the emulator if it is not running (idempotent) and wait until it answers."""
    endpoint = endpoint_for(env)
    url = urlparse(endpoint)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    current = processes.read_pid(NAME)
    if current is not None:
        return EmulatorInfo(endpoint=endpoint, pid=current)
    import socket

    with socket.socket() as s:
        s.settimeout(0.2)
        if s.connect_ex((host, port)) == 0:
            raise InfraError(
                f"port {port} is taken by another process, so the AWS emulator cannot start on {endpoint}",
                hint="stop that process, or set MLCTL_EMULATOR_ENDPOINT=http://127.0.0.1:<free port>",
            )
    # AWS managed IAM policies (e.g. AmazonEKSClusterPolicy) exist in moto only when asked for;
    # the cluster stack attaches them.
    pid = processes.spawn(
        NAME, [_moto_server(), "-H", host, "-p", str(port)], env={"MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
    )
    processes.wait_for_port(host, port, timeout=timeout, name=NAME)
    return EmulatorInfo(endpoint=endpoint, pid=pid)


def down() -> bool:
    return processes.stop(NAME)


def client_kwargs(env: Environment) -> dict[str, str]:
    """boto3 client/resource keyword arguments for an environment (emulator-aware)."""
    kwargs = {"region_name": env.region}
    if env.is_local:
        kwargs["endpoint_url"] = endpoint_for(env)
        kwargs.update(
            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=DUMMY_CREDENTIALS["AWS_SESSION_TOKEN"],
        )
    return kwargs
