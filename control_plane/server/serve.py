"""Run the API on uvicorn: TLS by default, plain HTTP only with ``--insecure-dev``."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from control_plane.errors import UsageError

__all__ = ["ServeOptions", "config"]


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
    from control_plane.local import ca

    local = ca.ensure()  # the embedded environment's CA: clients trust ca.pem (mlctl local up prints it)
    return local.server_cert, local.server_key


def config(options: ServeOptions) -> object:
    """A ``uvicorn.Config`` for ``options`` (the caller runs it: ``uvicorn.Server(config).run()``)."""
    import uvicorn

    from control_plane.server.app import create_app

    app = create_app(insecure_dev=options.insecure_dev)
    if options.insecure_dev:
        return uvicorn.Config(app, host=options.host, port=options.port, log_level="warning",
                              access_log=False, server_header=False)
    cert, key = _tls_files(options)
    # Python's default server context: TLS 1.2+ and the system's cipher policy.
    return uvicorn.Config(app, host=options.host, port=options.port, log_level="warning", access_log=False,
                          server_header=False, ssl_certfile=str(cert), ssl_keyfile=str(key),
                          ssl_version=ssl.PROTOCOL_TLS_SERVER)
