"""``mlctl login`` / ``whoami`` / ``logout``: OIDC tokens for a verified identity.

People use the device authorization grant (RFC 8628): mlctl prints a URL and a code, you confirm
it in a browser, mlctl polls at the provider's interval. Workloads (CI) use client credentials
(``--client-credentials`` with MLCTL_CLIENT_ID / MLCTL_CLIENT_SECRET). Tokens go to a cache file
readable only by you; they are never printed. The verbs (``services.operations.login`` / ``whoami``
/ ``logout``) are client-side: they establish this user's identity, so they need no role.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from control_plane.cli._show import show
from control_plane.client import remote
from control_plane.errors import PolicyViolation
from control_plane.output import OutputFormat, OutputOption, console, emit_json
from control_plane.services import Context, operations
from control_plane.settings import current as settings


def login(
    client_credentials: Annotated[
        bool, typer.Option("--client-credentials", help="Log in as a workload (MLCTL_CLIENT_ID/SECRET).")
    ] = False,
    issuer: Annotated[str | None, typer.Option(help="Issuer name or URL from the identity file.")] = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Log in with your identity provider and cache the tokens (0600).

    Example: mlctl login   (then open the printed URL and confirm the code)"""
    workload: tuple[str, str] | None = None
    if client_credentials:
        client_id, secret = settings().client_id, settings().client_secret
        if not client_id or not secret:
            raise PolicyViolation("--client-credentials needs MLCTL_CLIENT_ID and MLCTL_CLIENT_SECRET",
                                  hint="set both in the workload's environment (never on the command line)")
        workload = (client_id, secret)

    def prompt(device: Any) -> None:
        if output is OutputFormat.json:
            emit_json({"verification_uri": device.verification_uri, "user_code": device.user_code,
                       "verification_uri_complete": device.verification_uri_complete,
                       "interval": device.interval, "expires_in": device.expires_in})
        else:
            console.print(f"open [bold]{device.verification_uri}[/] and enter the code [bold]{device.user_code}[/]")
            console.print(f"  (or open {device.verification_uri_complete}); waiting for you to confirm …")

    show(operations.login(Context(), issuer=issuer, client_credentials=workload, on_device_code=prompt), output)


def whoami(output: OutputOption = OutputFormat.table) -> None:
    """Show who you act as: the verified identity and its mapped roles, or the asserted one."""
    api = remote()
    show(api.whoami() if api is not None else operations.whoami(Context()), output)


def logout(output: OutputOption = OutputFormat.table) -> None:
    """Forget the cached tokens. (JWT access tokens cannot be revoked; they expire within minutes.)"""
    show(operations.logout(Context()), output)


COMMANDS = {"login": login, "whoami": whoami, "logout": logout}
