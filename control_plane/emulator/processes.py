"""Detached background processes tracked by pid files under ``$MLCTL_HOME/run``.

Serving and emulators must outlive the mlctl process that started them (a release engineer's
terminal closing must not take production down), so they run in their own session and are found
again through their pid file.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from control_plane.errors import InfraError
from control_plane.settings import state_dir


def pid_file(name: str) -> Path:
    return state_dir("run") / f"{name}.pid"


def log_file(name: str) -> Path:
    return state_dir("logs") / f"{name}.log"


def read_pid(name: str) -> int | None:
    try:
        pid = int(pid_file(name).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if is_alive(pid) else None


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still answers kill(0); reap it if it is ours.
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


def spawn(name: str, argv: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> int:
    """Start ``argv`` detached (own session, stdio to a log file) and record its pid."""
    log = log_file(name).open("ab")
    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        close_fds=True,
    )
    log.close()
    pid_file(name).write_text(str(proc.pid))
    return proc.pid


def stop(name: str, *, timeout: float = 10.0) -> bool:
    """Stop a tracked process (SIGTERM, then SIGKILL). True if something was running."""
    pid = read_pid(name)
    pid_file(name).unlink(missing_ok=True)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and is_alive(pid):
        time.sleep(0.05)
    if is_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_for_port(host: str, port: int, *, timeout: float, name: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.1)
    raise InfraError(
        f"{name} did not start listening on {host}:{port} within {timeout:.0f}s",
        hint=f"see its log: {log_file(name)}",
    )
