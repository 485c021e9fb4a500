"""``make demo``'s identity steps: people log in through the device flow at the embedded OpenID
provider; for a prod-tier environment an asserted ``--as`` approval, the registrant's own approval
and a single approval are refused, and two verified approvers satisfy it. Called by
``control_plane.demo.run``."""

from __future__ import annotations

import threading
from collections.abc import Callable

from control_plane.demo.actors import as_actor
from control_plane.emulator.idp.devlogin import complete_device_login
from control_plane.errors import MlctlError, PolicyViolation
from control_plane.identity.login import DeviceCode
from control_plane.services import Context, approvals, operations

PROD = "uae-prod-aws"  # blueprints/uae-prod-aws.yaml declares tier: prod
_POLICY_HINT = "see policies/release.rego and control_plane/approvals"


def device_login(user: str, say: Callable[[str], None]) -> Context:
    """`mlctl login` for ``user`` (the same service verb: device grant, the token verified before it
    is cached): print the URL and code, confirm at the provider's dev pages (what the person does in
    a browser) while the verb polls at the provider's interval. Returns a Context fixed to the
    verified identity (what `mlctl` without ``--as`` acts as)."""
    browser: list[threading.Thread] = []

    def show_code(device: DeviceCode) -> None:
        say(f"  {user}: open {device.verification_uri} and enter {device.user_code} (confirmed at the "
            f"provider's pages; polling every {device.interval} s)")
        thread = threading.Thread(target=complete_device_login, args=(device.verification_uri_complete, user))
        thread.start()
        browser.append(thread)

    me = operations.login(Context(), on_device_code=show_code).actor
    for thread in browser:
        thread.join()
    assert me.verified is not None
    say(f"    verified: {me.verified.subject} ({me.verified.kind}) by {me.verified.issuer}; roles {', '.join(me.roles)}")
    return Context.for_actor(me)


def _refused(ctx: Context, version: str, attempt: str) -> str:
    """Why the approval of digits:VERSION for PROD by ``ctx`` was refused; the demo fails if it was not."""
    try:
        approvals.approve(ctx, "digits", version, PROD)
    except PolicyViolation as exc:
        return exc.message
    raise MlctlError(f"demo failed: {attempt} was allowed", hint=_POLICY_HINT)


def show(version: str, registrant: Context, say: Callable[[str], None]) -> None:
    """The prod-tier approvals of digits:VERSION, which ``registrant`` (a verified person who is an
    approver too) registered: only two verified approvers other than the registrant satisfy it."""
    attempt = f"`--as amira approve digits:{version} --env {PROD}`"
    say(f"  refused: {attempt}: {_refused(as_actor('amira'), version, attempt)}")
    who = registrant.actor.name  # the verified identity digits:VERSION was registered with
    attempt = f"{who}, its registrant, approved digits:{version} for {PROD}"
    say(f"  {attempt} → refused: {_refused(registrant, version, attempt)}")
    # From here on each approval acts as a device-flow login's verified identity (no --as).
    one = approvals.approve(device_login("amira", say), "digits", version, PROD)
    say(f"  amira approved for {PROD} → {'allowed' if one.allowed else 'refused'}: "
        + "; ".join(r for r in one.reasons if "needs" in r))
    two = approvals.approve(device_login("omar", say), "digits", version, PROD)
    say(f"  omar approved for {PROD} → {'allowed' if two.allowed else 'refused'}: "
        + "; ".join(r for r in two.reasons if r.startswith("approved by")))
    if one.allowed or not two.allowed:
        raise MlctlError("demo failed: the prod approvals did not behave as the policy says", hint=_POLICY_HINT)
