"""RBAC over HTTP with verified identities: the service layer decides on the token's subject and
the roles its groups map to; every refusal is a 403 with the reason, and audited."""

from __future__ import annotations

from pathlib import Path

import pytest

from control_plane import approvals, audit, registry
from tests.registry.conftest import make_model
from tests.server.conftest import Api

PROD = "uae-prod-aws"


@pytest.fixture()
def registered(api: Api, tmp_path: Path) -> str:
    """fraud:1 registered by dana (data scientist, verified), unsigned."""
    api.oidc.login("dana")
    registry.register("fraud", "1", make_model(tmp_path / "m"), code_commit="abcdef1")
    return "fraud:1"


def _denials(action: str) -> list[audit.AuditEntry]:
    return [e for e in audit.entries() if e.action == action and e.decision == "deny"]


def test_a_data_scientist_may_not_sign(api: Api, registered: str) -> None:
    r = api.call("POST", "/v1/models/fraud/1/signatures", api.token("dana"), json={})
    assert r.status_code == 403, r.text
    assert "actor 'dana' (roles: data-scientist) lacks permission 'model.sign'" in r.json()["error"]["message"]
    [denied] = _denials("model.sign")
    assert denied.actor == "dana" and denied.details["identity"]["source"] == "verified"
    assert not registry.get_version("fraud", "1").signature.signed


def test_an_auditor_changes_nothing(api: Api, registered: str) -> None:
    token = api.token("ali")
    for path, body in (("/v1/models/fraud/1/signatures", {}), ("/v1/models/fraud/1/approvals", {"env": PROD})):
        r = api.call("POST", path, token, json=body)
        assert r.status_code == 403 and "actor 'ali' (roles: auditor)" in r.json()["error"]["message"], r.text
    assert api.call("GET", "/v1/models/fraud/1", token).status_code == 200  # reading is what auditors do
    assert len(_denials("model.sign")) == 1 and len(_denials("approve")) == 1
    assert approvals.approvals_for("fraud", "1", PROD) == []


def test_self_approval_is_refused_on_the_verified_subject(api: Api, tmp_path: Path) -> None:
    # amira is an approver and (here) a data scientist too, by her verified groups
    api.oidc.map_groups(tmp_path / "identity.yaml", mlctl_approver=["approver", "data-scientist"])
    api.oidc.login("amira")
    registry.register("fraud", "2", make_model(tmp_path / "m2", "b"), code_commit="abcdef1")
    r = api.call("POST", "/v1/models/fraud/2/approvals", api.token("amira"), json={"env": PROD})
    assert r.status_code == 403 and "amira registered fraud:2 and cannot approve it" in r.text
    assert approvals.approvals_for("fraud", "2", PROD) == []
    assert _denials("approve")[-1].actor == "amira"


def test_two_distinct_verified_approvers_for_prod(api: Api, registered: str) -> None:
    api.oidc.login("eli")
    registry.sign("fraud", "1")
    one = api.call("POST", "/v1/models/fraud/1/approvals", api.token("amira"), json={"env": PROD}).json()
    assert not one["allowed"] and "prod needs 2 distinct approvers" in " ".join(one["reasons"])
    again = api.call("POST", "/v1/models/fraud/1/approvals", api.token("amira"), json={"env": PROD}).json()
    assert again["approvers"] == ["amira"]  # the same subject twice counts once
    two = api.call("POST", "/v1/models/fraud/1/approvals", api.token("omar"), json={"env": PROD}).json()
    assert two["allowed"] and two["approvers"] == ["amira", "omar"], two
    entry = [e for e in audit.entries() if e.action == "approve" and e.decision == "allow"][-1]
    assert entry.details["identity"] == {"source": "verified", "issuer": api.oidc.issuer, "subject": "omar",
                                         "kind": "person", "client": "mlctl-cli"}
