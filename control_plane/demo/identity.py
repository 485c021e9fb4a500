"""``make demo``'s identity step: people log in through the device flow at the embedded OpenID
provider, an asserted ``--as`` approval and a single approval are refused for a prod-tier
environment, and two verified approvers satisfy it. Called by ``control_plane.demo.run``."""

from __future__ import annotations

import threading
from collections.abc import Callable

from control_plane import identity
from control_plane.demo.actors import as_actor
from control_plane.emulator import idp
from control_plane.emulator.idp.devlogin import complete_device_login
from control_plane.errors import MlctlError, PolicyViolation
from control_plane.identity import config, login, tokens
from control_plane.services import Context, approvals

PROD = "uae-prod-aws"  # blueprints/uae-prod-aws.yaml declares tier: prod


def _device_login(user: str, say: Callable[[str], None]) -> None:
    """`mlctl login` for ``user``: print the URL and code, confirm at the provider's dev pages
    (what the person does in a browser), poll at the provider's interval, cache the tokens."""
    cfg = config.load()
    assert cfg is not None
    issuer = login.pick_issuer(cfg, None)
    device = login.start_device(cfg, issuer)
    say(f"  {user}: open {device.verification_uri} and enter {device.user_code} (confirmed at the provider's "
        f"pages; polling every {device.interval} s)")
    browser = threading.Thread(target=complete_device_login, args=(device.verification_uri_complete, user))
    browser.start()
    cached = login.poll_device(issuer, device)
    browser.join()
    tokens.save(cached)
    me = identity.current()
    assert me.verified is not None
    say(f"    verified: {me.verified.subject} ({me.verified.kind}) by {me.verified.issuer}; roles {', '.join(me.roles)}")


def show(version: str, say: Callable[[str], None]) -> None:
    info = idp.up()
    say(f"  OpenID provider (node-oidc-provider) at {info.issuer}")
    try:
        approvals.approve(as_actor("amira"), "digits", version, PROD)
    except PolicyViolation as exc:
        say(f"  refused: `--as amira approve digits:{version} --env {PROD}`: {exc.message}")
    # No --as from here on: a fresh Context resolves the identity of the cached device-flow token.
    _device_login("amira", say)
    one = approvals.approve(Context(), "digits", version, PROD)
    say(f"  amira approved for {PROD} → {'allowed' if one.allowed else 'refused'}: "
        + "; ".join(r for r in one.reasons if "needs" in r))
    _device_login("omar", say)
    two = approvals.approve(Context(), "digits", version, PROD)
    say(f"  omar approved for {PROD} → {'allowed' if two.allowed else 'refused'}: "
        + "; ".join(r for r in two.reasons if r.startswith("approved by")))
    if not (two.allowed and not one.allowed):
        raise MlctlError("demo failed: the prod approvals did not behave as the policy says",
                         hint="see policies/release.rego")
