"""``mlctl server``: serve the control plane as an authenticated HTTPS API (docs/server.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from control_plane.client import is_loopback
from control_plane.errors import UsageError
from control_plane.output import info


def server(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8443,
    cert: Annotated[Path | None, typer.Option(help="TLS certificate chain (PEM); default: the local CA's.")] = None,
    key: Annotated[Path | None, typer.Option(help="TLS private key (PEM) of --cert.")] = None,
    insecure_dev: Annotated[bool, typer.Option(
        "--insecure-dev", help="Plain HTTP on loopback, for dev-tier environments only.")] = False,
) -> None:
    """Serve every mlctl verb over HTTPS with OIDC bearer tokens (roles from the identity file).

    Probes: /healthz, /readyz; metrics: /metrics; API document: /openapi.json.

    Example:  mlctl server --port 8443   (then: MLCTL_SERVER=https://127.0.0.1:8443 mlctl whoami)
    """
    import uvicorn

    from control_plane.server.serve import ServeOptions, config

    if insecure_dev and not is_loopback(host):
        raise UsageError(f"--insecure-dev serves plain HTTP and listens on loopback only, not {host}",
                         hint="drop --host, or serve with TLS (--cert/--key)")
    cfg = config(ServeOptions(host=host, port=port, cert=cert, key=key, insecure_dev=insecure_dev))
    scheme = "http" if insecure_dev else "https"
    info(f"mlctl server on {scheme}://{host}:{port} (Ctrl-C stops it)"
         + (" — plain HTTP: staging and prod environments are refused" if insecure_dev else ""))
    uvicorn.Server(cfg).run()  # type: ignore[arg-type]


COMMANDS = {"server": server}
