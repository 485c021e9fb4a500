"""``mlctl login`` / ``whoami`` / ``logout``: OIDC tokens for a verified identity.

People use the device authorization grant (RFC 8628): mlctl prints a URL and a code, you confirm
it in a browser, mlctl polls at the provider's interval. Workloads (CI) use client credentials
(``--client-credentials`` with MLCTL_CLIENT_ID / MLCTL_CLIENT_SECRET). Tokens go to a cache file
readable only by you; they are never printed.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer

from control_plane.errors import PolicyViolation
from control_plane.output import OutputFormat, OutputOption, console, emit_json
from control_plane.settings import current as settings

if TYPE_CHECKING:
    from control_plane.identity.config import IdentityConfig
    from control_plane.identity.tokens import CachedTokens


def _config() -> IdentityConfig:
    from control_plane.identity import config

    loaded = config.load()
    if loaded is None:
        raise PolicyViolation(
            f"no identity file at {config.identity_file()}: mlctl does not know which issuer to trust",
            hint="run `mlctl local up` (the embedded provider writes one) or write one (docs/identity.md)",
        )
    return loaded


def login(
    client_credentials: Annotated[
        bool, typer.Option("--client-credentials", help="Log in as a workload (MLCTL_CLIENT_ID/SECRET).")
    ] = False,
    issuer: Annotated[str | None, typer.Option(help="Issuer name or URL from the identity file.")] = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Log in with your identity provider and cache the tokens (0600).

    Example: mlctl login   (then open the printed URL and confirm the code)"""
    from control_plane.identity import login as flows

    cfg = _config()
    iss = flows.pick_issuer(cfg, issuer)
    if client_credentials:
        client_id, secret = settings().client_id, settings().client_secret
        if not client_id or not secret:
            raise PolicyViolation("--client-credentials needs MLCTL_CLIENT_ID and MLCTL_CLIENT_SECRET",
                                  hint="set both in the workload's environment (never on the command line)")
        cached = flows.client_credentials(cfg, iss, client_id, secret)
    else:
        device = flows.start_device(cfg, iss)
        if output is OutputFormat.json:
            emit_json({"verification_uri": device.verification_uri, "user_code": device.user_code,
                       "verification_uri_complete": device.verification_uri_complete,
                       "interval": device.interval, "expires_in": device.expires_in})
        else:
            console.print(f"open [bold]{device.verification_uri}[/] and enter the code [bold]{device.user_code}[/]")
            console.print(f"  (or open {device.verification_uri_complete}); waiting for you to confirm …")
        cached = flows.poll_device(iss, device)
    _verify_and_save(cached)
    _show(output, logged_in=True)


def _verify_and_save(cached: CachedTokens) -> None:
    from control_plane import identity
    from control_plane.identity import tokens

    v = identity.verifier()
    assert v is not None
    v.verify(cached.access_token)  # never cache a token we would refuse
    tokens.save(cached)


def _show(output: OutputFormat, *, logged_in: bool = False) -> None:
    from control_plane import identity

    me = identity.current()
    view = {"actor": me.name, "source": me.source, "roles": me.roles, **me.audit_view()}
    if me.verified is not None:
        view.update(name=me.verified.name, groups=me.verified.groups,
                    expires_in=max(0, me.verified.expires_at - int(time.time())))
    if output is OutputFormat.json:
        emit_json(view)
        return
    if me.verified is not None:
        v = me.verified
        console.print(f"{'logged in as' if logged_in else 'you are'} [bold]{v.subject}[/] ({v.kind}) "
                      f"verified by {v.issuer}")
        console.print(f"  roles: {', '.join(me.roles) or 'none'}; groups: {', '.join(v.groups) or 'none'}; "
                      f"client {v.client_id}; token expires in {view['expires_in']} s")
    else:
        how = "--as / MLCTL_ACTOR" if me.source == "asserted" else "the operating-system user"
        console.print(f"you are [bold]{me.name}[/], asserted by {how} (not verified: dev-tier environments only)")
        console.print(f"  roles (roles file): {', '.join(me.roles) or 'none'}; log in with `mlctl login`")


def whoami(output: OutputOption = OutputFormat.table) -> None:
    """Show who you act as: the verified identity and its mapped roles, or the asserted one."""
    _show(output)


def logout(output: OutputOption = OutputFormat.table) -> None:
    """Forget the cached tokens. (JWT access tokens cannot be revoked; they expire within minutes.)"""
    from control_plane.identity import tokens

    removed = tokens.clear()
    if output is OutputFormat.json:
        emit_json({"logged_out": removed})
    else:
        console.print("logged out" if removed else "you were not logged in")


COMMANDS = {"login": login, "whoami": whoami, "logout": logout}
