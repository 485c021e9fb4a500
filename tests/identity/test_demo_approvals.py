"""`make demo`'s prod-tier approval step (control_plane/demo/identity.py) against the real provider
and the real policy: people log in through the device flow (the demo's own code, polling at the
provider's interval), and what the demo prints is what was decided and audited.

The demo itself is not in the suite (it takes minutes); this is the part of it that shows the
issue's governance claims, so a change to the policy or to approvals that made the demo lie fails here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from control_plane import approvals, audit
from control_plane.demo import identity as demo_identity
from control_plane.demo.actors import as_actor
from control_plane.services import models
from tests.registry.conftest import make_model

REPO = Path(__file__).resolve().parents[2]
PROD = demo_identity.PROD


def test_demo_refuses_asserted_self_and_single_approvals_then_allows_two(
        oidc: Any, mlctl_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # eli signs as an asserted dev-tier identity, as in the demo (the roles example's actors)
    monkeypatch.setenv("MLCTL_ROLES_FILE", str(REPO / "policies" / "roles.example.yaml"))
    said: list[str] = []
    noor = demo_identity.device_login("noor", said.append)
    assert noor.actor.source == "verified" and sorted(noor.actor.roles) == ["approver", "data-scientist"]
    mv = models.register(noor, "digits", "2", make_model(tmp_path / "m"), code_commit="0" * 40).version
    assert mv.registered_by == "noor"
    models.sign(as_actor("eli"), "digits", "2")

    demo_identity.show("2", noor, said.append)
    text = "\n".join(said)
    assert "verified: noor (person)" in text and "roles approver, data-scientist" in text
    assert "`--as amira approve digits:2 --env uae-prod-aws`: approve in uae-prod-aws (prod tier) needs a " \
           "server-verified identity" in text
    assert f"noor, its registrant, approved digits:2 for {PROD} → refused: noor registered digits:2 and " \
           "cannot approve it (separation of duties)" in text
    assert f"amira approved for {PROD} → refused: prod needs 2 distinct approvers" in text
    assert f"omar approved for {PROD} → allowed: approved by amira, omar" in text
    assert text.count("/device and enter ") == 3  # three device-flow logins: noor, amira, omar

    # What was printed is what the store and the audit trail hold.
    assert sorted(a.approver for a in approvals.approvals_for("digits", "2", PROD)) == ["amira", "omar"]
    denied = [(e.actor, e.details.get("identity", {}).get("source"))
              for e in audit.entries() if e.action == "approve" and e.decision == "deny"]
    assert ("amira", "asserted") in denied  # the --as attempt
    assert "noor" in [actor for actor, _ in denied]  # the registrant's own approval
    allowed = [e.actor for e in audit.entries() if e.action == "approve" and e.decision == "allow"]
    assert allowed == ["amira", "omar"]
    assert audit.verify().ok
