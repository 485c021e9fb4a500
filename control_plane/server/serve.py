"""Run the API on uvicorn: TLS by default, plain HTTP only with ``--insecure-dev``."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from control_plane.emulator import ca
from control_plane.errors import InfraError, UsageError
from control_plane.server import lockdown
from control_plane.server.app import create_app

__all__ = ["ServeOptions", "config", "in_thread"]


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8443
    cert: Path | None = None  # PEM chain; default: the local CA's server certificate
    key: Path | None = None
    insecure_dev: bool = False


def _tls_files(options: ServeOptions) -> tuple[Path, Path]:
    if (options.cert is None) != (options.key is None):
        raise UsageError("--cert and --key go together", hint="give both, or neither for the local CA's certificate")
    if options.cert is not None and options.key is not None:
        for flag, path in (("--cert", options.cert), ("--key", options.key)):
            if not path.is_file():
                raise UsageError(f"{flag} {path}: no such file", hint="give the PEM file's path")
        return options.cert, options.key
    local = ca.ensure()  # the embedded environment's CA: clients trust ca.pem (mlctl local up prints it)
    return local.server_cert, local.server_key


def _watch_identity_file(app: Any) -> None:
    """Audit the identity file's digest now, and each change a request finds (before the request's
    token is verified with the reloaded file)."""
    watch = lockdown.IdentityWatch()
    watch.start()
    app.state.identity_watch = watch

    async def audit_identity_changes(request: Any, call_next: Any) -> Any:
        watch.check()
        return await call_next(request)

    app.middleware("http")(audit_identity_changes)


def config(options: ServeOptions) -> object:
    """A ``uvicorn.Config`` for ``options`` (the caller runs it: ``uvicorn.Server(config).run()``)."""
    import uvicorn

    # Before anything opens the store: refuse a store or identity file others could change.
    lockdown.check(insecure_dev=options.insecure_dev)
    app = create_app(insecure_dev=options.insecure_dev)
    _watch_identity_file(app)
    if options.insecure_dev:
        return uvicorn.Config(app, host=options.host, port=options.port, log_level="warning",
                              access_log=False, server_header=False)
    cert, key = _tls_files(options)
    # Python's default server context: TLS 1.2+ and the system's cipher policy.
    return uvicorn.Config(app, host=options.host, port=options.port, log_level="warning", access_log=False,
                          server_header=False, ssl_certfile=str(cert), ssl_keyfile=str(key),
                          ssl_version=ssl.PROTOCOL_TLS_SERVER)


@contextmanager
def in_thread(options: ServeOptions, *, start_timeout: float = 20.0) -> Iterator[str]:
    """Serve in a thread of this process until the block ends; yields the base URL. For tests and
    benchmarks (``mlctl server`` runs uvicorn in the foreground instead)."""
    import uvicorn

    server = uvicorn.Server(config(options))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, name="mlctl-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise InfraError(f"mlctl server did not start on {options.host}:{options.port}",
                             hint="is the port taken? choose another with --port")
        time.sleep(0.02)
    try:
        yield f"{'http' if options.insecure_dev else 'https'}://{options.host}:{options.port}"
    finally:
        server.should_exit = True
        thread.join(10)
