"""The RBAC / approval matrix (real Rego): who may do what, and when a release gate opens."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from control_plane import approvals, audit, registry
from control_plane.access import authorize, check
from control_plane.errors import PolicyViolation
from control_plane.services import Context
from control_plane.services import approvals as approval_service
from tests.registry.conftest import run_cli


def _approve(name: str, version: str, env: str) -> approvals.Decision:
    """`mlctl approve`'s verb (RBAC, then the record), as the current identity."""
    return approval_service.approve(Context(), name, version, env).decision


@pytest.fixture()
def signed_model(roles: Path, act_as: Callable[[str], None], model_dir: Path) -> Callable[[str], str]:
    """Register (as dana, the registrant) and sign (as eli) a model of a given classification."""
    def _make(classification: str) -> str:
        act_as("dana")
        mv = registry.register("fraud", classification, model_dir, classification=classification,
                               code_commit="abcdef1")
        act_as("eli")
        registry.sign("fraud", classification)
        return mv.version

    return _make


@pytest.mark.parametrize(
    ("actor", "action", "allowed"),
    [
        ("dana", "model.register", True), ("dana", "model.sign", False), ("dana", "approve", False),
        ("eli", "model.sign", True), ("eli", "approve", False), ("eli", "release", True),
        ("amira", "approve", True), ("amira", "model.register", False), ("amira", "release", False),
        ("sara", "approve", True), ("ali", "audit.export", True), ("ali", "model.sign", False),
        ("pat", "release.rollback", True), ("pat", "approve", False), ("nobody", "model.register", False),
        ("eli", "no.such.action", False),
    ],
)
def test_rbac_matrix(roles: Path, act_as: Callable[[str], None], actor: str, action: str, allowed: bool) -> None:
    act_as(actor)
    decision = check(action, "fraud:1")
    assert decision.allowed is allowed, decision.reasons
    if not allowed:
        assert decision.reasons
        with pytest.raises(PolicyViolation) as exc:
            authorize(action, "fraud:1")
        assert actor in exc.value.message and action in exc.value.message and exc.value.hint
        last = audit.entries()[-1]
        assert (last.action, last.decision, last.actor) == (action, "deny", actor)


def test_wrong_role_names_actor_roles_and_permission(roles: Path, act_as: Callable[[str], None]) -> None:
    act_as("dana")
    with pytest.raises(PolicyViolation) as exc:
        authorize("approve", "fraud:1@prod")
    assert ("actor 'dana' (roles: data-scientist) lacks permission 'approve' "
            "(granted to: approver, security-officer)") in exc.value.message


def test_no_roles_file_denies_with_how_to_create_it(mlctl_home: Path, act_as: Callable[[str], None]) -> None:
    act_as("eli")
    with pytest.raises(PolicyViolation) as exc:
        authorize("model.register", "m:1")
    assert "no roles file" in exc.value.message
    assert "roles.yaml" in (exc.value.hint or "") and "roles.example.yaml" in (exc.value.hint or "")


def test_without_as_the_os_user_acts_and_is_recorded_as_such(roles: Path) -> None:
    import getpass

    with pytest.raises(PolicyViolation) as exc:
        authorize("model.register", "m:1")
    assert f"actor '{getpass.getuser()}' has no roles" in exc.value.message
    last = audit.entries()[-1]
    assert last.actor == getpass.getuser() and last.details["identity"] == {"source": "os-user"}


def test_bad_roles_file_is_a_clear_error(mlctl_home: Path, act_as: Callable[[str], None]) -> None:
    (mlctl_home / "roles.yaml").write_text("actors:\n  eli: [ml-enginer]\n")
    act_as("eli")
    with pytest.raises(PolicyViolation, match="unknown role"):
        authorize("model.register", "m:1")


PROD = "uae-prod-aws"  # blueprints/uae-prod-aws.yaml: tier prod


@pytest.fixture()
def staging(tmp_path: Path) -> str:
    """A staging-tier environment (uae-local's blueprint with tier: staging, as a file)."""
    import yaml

    from control_plane.settings import BLUEPRINTS_DIR

    data = yaml.safe_load((BLUEPRINTS_DIR / "uae-local.yaml").read_text())
    data.update(name="uae-staging-local", tier="staging")
    path = tmp_path / "uae-staging-local.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_self_approval_is_refused(db_url: str, oidc: Any, model_dir: Path, tmp_path: Path,
                                  act_as: Callable[[str], None], roles: Path) -> None:
    # amira is both a data scientist and an approver here, by her verified groups
    oidc.map_groups(tmp_path / "identity.yaml", mlctl_approver=["approver", "data-scientist"])
    oidc.login("amira")
    mv = registry.register("fraud", "s", model_dir, code_commit="abcdef1")
    assert mv.registered_by == "amira"
    act_as("eli")
    registry.sign("fraud", "s")
    oidc.login("amira")
    with pytest.raises(PolicyViolation, match="amira registered fraud:s and cannot approve it"):
        _approve("fraud", "s", PROD)
    gate = approvals.gate("fraud", "s", PROD)
    assert not gate.allowed and any("needs 2 distinct approvers" in r for r in gate.reasons)
    denied = [e for e in audit.entries() if e.action == "approve"]
    assert [e.decision for e in denied] == ["deny"] and denied[0].details["identity"]["source"] == "verified"


def test_asserted_identity_cannot_act_in_staging_or_prod(signed_model: Callable[[str], str], staging: str,
                                                         act_as: Callable[[str], None]) -> None:
    version = signed_model("internal")
    for env, tier in ((PROD, "prod"), (staging, "staging")):
        act_as("amira")  # an approver by the roles file, but only asserted
        with pytest.raises(PolicyViolation) as exc:
            _approve("fraud", version, env)
        assert f"({tier} tier) needs a server-verified identity" in exc.value.message
        assert "'amira' is only asserted (--as / MLCTL_ACTOR)" in exc.value.message
        assert "mlctl login" in (exc.value.hint or "")
    assert approvals.approvals_for("fraud", version, PROD) == []
    act_as("amira")
    assert _approve("fraud", version, "uae-local").allowed  # dev tier: asserted is fine
    refused = [e for e in audit.entries() if e.action == "approve" and e.decision == "deny"]
    assert len(refused) == 2 and refused[0].details["check"] == "identity"
    allowed = [e for e in audit.entries() if e.action == "approve" and e.decision == "allow"]
    assert [(e.actor, e.details["identity"]) for e in allowed] == [("amira", {"source": "asserted"})]


def test_prod_matrix(db_url: str, signed_model: Callable[[str], str], oidc: Any, staging: str) -> None:
    version = signed_model("internal")
    assert approvals.gate("fraud", version, "uae-local").allowed  # dev: no approval needed
    assert not approvals.gate("fraud", version, staging).allowed
    oidc.login("amira")
    one = _approve("fraud", version, PROD)
    assert not one.allowed and one.tier == "prod"
    assert "prod needs 2 distinct approvers other than the registrant; fraud:internal has 1 (amira)" in one.reasons
    again = _approve("fraud", version, PROD)  # the same person twice still counts once
    assert not again.allowed
    assert _approve("fraud", version, staging).allowed
    oidc.login("omar")
    two = _approve("fraud", version, PROD)
    assert two.allowed, two.reasons
    assert "approved by amira, omar" in two.reasons
    assert approvals.gate("fraud", version, PROD).allowed
    gates = [e for e in audit.entries() if e.action == "release.gate"]
    assert [g.decision for g in gates] == ["allow", "deny", "allow"]  # every decision audited
    entry = [e for e in audit.entries() if e.action == "approve"][-1]
    assert entry.actor == "omar" and entry.details["identity"] == {
        "source": "verified", "issuer": oidc.issuer, "subject": "omar", "kind": "person", "client": "mlctl-cli"}


def test_a_workload_approval_never_counts_in_prod(signed_model: Callable[[str], str], oidc: Any,
                                                  tmp_path: Path) -> None:
    version = signed_model("internal")
    oidc.map_clients(tmp_path / "identity.yaml", ci_pipeline=["approver"])  # misconfigured on purpose
    oidc.login_workload()
    decision = _approve("fraud", version, PROD)
    assert not decision.allowed
    assert "approval by 'ci-pipeline' ignored: it was not made by a verified person" in decision.reasons
    assert any("has 0" in r for r in decision.reasons)


def test_pii_needs_a_security_officer(db_url: str, signed_model: Callable[[str], str], oidc: Any) -> None:
    version = signed_model("pii")
    oidc.login("amira")
    _approve("fraud", version, PROD)
    oidc.login("omar")
    two = _approve("fraud", version, PROD)
    assert not two.allowed
    assert "prod release of a pii model needs an approval by a security-officer; fraud:pii has none" in two.reasons
    oidc.login("sara")
    three = _approve("fraud", version, PROD)
    assert three.allowed, three.reasons
    assert "security-officer approval by sara" in three.reasons


def test_unsigned_model_cannot_reach_prod(roles: Path, act_as: Callable[[str], None], model_dir: Path,
                                          oidc: Any) -> None:
    act_as("dana")
    registry.register("fraud", "u", model_dir, code_commit="abcdef1")
    oidc.login("amira")
    _approve("fraud", "u", PROD)
    oidc.login("omar")
    decision = _approve("fraud", "u", PROD)
    assert not decision.allowed and any("is not signed" in r for r in decision.reasons)


def test_revoked_role_withdraws_approval(signed_model: Callable[[str], str], oidc: Any, tmp_path: Path) -> None:
    version = signed_model("internal")
    oidc.login("amira")
    _approve("fraud", version, PROD)
    oidc.login("omar")
    assert _approve("fraud", version, PROD).allowed
    oidc.map_groups(tmp_path / "identity.yaml", mlctl_approver=["auditor"])  # the group loses approver
    gate = approvals.gate("fraud", version, PROD)
    assert not gate.allowed
    assert any("'omar' ignored: they hold neither approver nor security-officer now" in r for r in gate.reasons)


def test_cli_approve(signed_model: Callable[[str], str], capsys: pytest.CaptureFixture[str], oidc: Any) -> None:
    version = signed_model("confidential")
    code, out, err = run_cli("--as", "amira", "approve", f"fraud:{version}", "--env", PROD)
    assert code == 4 and "needs a server-verified identity" in err and "mlctl login" in err
    oidc.login("amira")
    code, out, err = run_cli("approve", f"fraud:{version}", "--env", PROD, "-o", "json")
    assert code == 0, err
    body = json.loads(out)
    assert body["allowed"] is False and body["tier"] == "prod" and body["env"] == PROD
    assert any("security-officer" in r for r in body["reasons"])
    oidc.login("eli")
    code, out, err = run_cli("approve", f"fraud:{version}", "--env", PROD)
    assert code == 4 and "lacks permission 'approve'" in err and "fix:" in err
    code, out, err = run_cli("approve", f"fraud:{version}", "--env", "qa")
    assert code == 6 and "environment 'qa' has no blueprint" in err and "uae-prod-aws" in err


def test_service_verbs_follow_the_tier_of_the_services_environment(
    capsys: pytest.CaptureFixture[str], act_as: Callable[[str], None]
) -> None:
    """promote/abort/resume/rollback act on a service: the tier of the environment its releases run
    in decides, so `--as` cannot steer a prod service either."""
    from datetime import UTC, datetime

    from control_plane.access.roles import write_assignments
    from control_plane.release.models import ReleaseRow
    from control_plane.store import session_scope

    write_assignments({"eli": ["ml-engineer"], "omar": ["approver"]})
    stamp = datetime.now(UTC).isoformat()
    with session_scope() as s:
        s.add(ReleaseRow(id="rel-prod-1", service="fraud", model_name="fraud", model_version="1", digest="",
                         environment=PROD, strategy="blue-green", state="SWITCHED", colour="green",
                         config="{}", reasons="[]", created_by="eli", created_at=stamp, updated_at=stamp))
    for verb in ("promote", "abort", "resume", "rollback"):
        code, _, err = run_cli("--as", "eli", "release", verb, "fraud")
        assert code == 4, (verb, err)
        assert "(prod tier) needs a server-verified identity" in err, (verb, err)
    denied = [e for e in audit.entries() if e.decision == "deny" and e.subject == "service/fraud"]
    assert len(denied) == 4


def test_staging_and_prod_refuse_a_home_others_can_read(
    signed_model: Callable[[str], str], act_as: Callable[[str], None], mlctl_home: Path
) -> None:
    version = signed_model("internal")
    act_as("amira")
    mlctl_home.chmod(0o755)
    try:
        with pytest.raises(PolicyViolation) as exc:
            _approve("fraud", version, PROD)
        assert "is readable by other users (mode 755)" in exc.value.message
        assert exc.value.hint == f"chmod 700 {mlctl_home}"
        assert _approve("fraud", version, "uae-local").allowed  # dev: a warning only
    finally:
        mlctl_home.chmod(0o700)
    with pytest.raises(PolicyViolation) as exc:  # private again: the identity check is next
        _approve("fraud", version, PROD)
    assert "needs a server-verified identity" in exc.value.message
