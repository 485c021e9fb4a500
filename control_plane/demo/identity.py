"""``make demo``'s identity steps: people log in through the device flow at the embedded OpenID
provider; for a prod-tier environment an asserted ``--as`` approval, the registrant's own approval
and a single approval are refused, and two verified approvers satisfy it. Called by
``control_plane.demo.run``."""

from __future__ import annotations

import threading
from collections.abc import Callable

from control_plane import identity
from control_plane.demo.actors import as_actor
from control_plane.emulator.idp.devlogin import complete_device_login
from control_plane.errors import MlctlError, PolicyViolation
from control_plane.identity import config, login, tokens
from control_plane.services import Context, approvals

PROD = "uae-prod-aws"  # blueprints/uae-prod-aws.yaml declares tier: prod


def device_login(user: str, say: Callable[[str], None]) -> Context:
    """`mlctl login` for ``user``: print the URL and code, confirm at the provider's dev pages
    (what the person does in a browser), poll at the provider's interval, cache the tokens.
    Returns a Context fixed to the verified identity (what `mlctl` without ``--as`` acts as)."""
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
    return Context.for_actor(me)


def show(version: str, registrant: Context, say: Callable[[str], None]) -> None:
    """The prod-tier approvals of digits:VERSION, which ``registrant`` (a verified person who is an
    approver too) registered: only two verified approvers other than the registrant satisfy it."""
    refused: list[str] = []
    try:
        approvals.approve(as_actor("amira"), "digits", version, PROD)
    except PolicyViolation as exc:
        refused.append("asserted")
        say(f"  refused: `--as amira approve digits:{version} --env {PROD}`: {exc.message}")
    who = registrant.actor.name
    try:
        approvals.approve(registrant, "digits", version, PROD)  # still logged in since registering it
    except PolicyViolation as exc:
        refused.append("self")
        say(f"  {who}, its registrant, approved digits:{version} for {PROD} → refused: {exc.message}")
    # From here on each approval acts as the cached device-flow token's identity (no --as).
    one = approvals.approve(device_login("amira", say), "digits", version, PROD)
    say(f"  amira approved for {PROD} → {'allowed' if one.allowed else 'refused'}: "
        + "; ".join(r for r in one.reasons if "needs" in r))
    two = approvals.approve(device_login("omar", say), "digits", version, PROD)
    say(f"  omar approved for {PROD} → {'allowed' if two.allowed else 'refused'}: "
        + "; ".join(r for r in two.reasons if r.startswith("approved by")))
    if refused != ["asserted", "self"] or one.allowed or not two.allowed:
        raise MlctlError("demo failed: the prod approvals did not behave as the policy says",
                         hint="see policies/release.rego and control_plane/approvals")
