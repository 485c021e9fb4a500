"""The RBAC / approval matrix (real Rego): who may do what, and when a release gate opens."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from control_plane import approvals, audit, registry
from control_plane.access import authorize, check
from control_plane.errors import PolicyViolation
from tests.registry.conftest import run_cli


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


def _approve(act_as: Callable[[str], None], who: str, version: str, env: str) -> approvals.Decision:
    act_as(who)
    return approvals.approve("fraud", version, env)


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


def test_no_actor_is_denied(roles: Path) -> None:
    with pytest.raises(PolicyViolation) as exc:
        authorize("model.register", "m:1")
    assert "no actor" in exc.value.message and "--as" in (exc.value.hint or "")


def test_bad_roles_file_is_a_clear_error(mlctl_home: Path, act_as: Callable[[str], None]) -> None:
    (mlctl_home / "roles.yaml").write_text("actors:\n  eli: [ml-enginer]\n")
    act_as("eli")
    with pytest.raises(PolicyViolation, match="unknown role"):
        authorize("model.register", "m:1")


def test_self_approval_is_refused(db_url: str, signed_model: Callable[[str], str],
                                  act_as: Callable[[str], None], roles: Path) -> None:
    from control_plane.access.roles import write_assignments

    version = signed_model("internal")
    write_assignments({**{"dana": ["data-scientist", "approver"]}, "eli": ["ml-engineer"]})
    with pytest.raises(PolicyViolation, match="dana registered fraud:internal and cannot approve it"):
        _approve(act_as, "dana", version, "staging")
    gate = approvals.gate("fraud", version, "staging")
    assert not gate.allowed and any("needs 1 approval" in r for r in gate.reasons)
    assert [e.decision for e in audit.entries() if e.action == "approve"] == ["deny"]


def test_prod_matrix(db_url: str, signed_model: Callable[[str], str], act_as: Callable[[str], None]) -> None:
    version = signed_model("internal")
    assert approvals.gate("fraud", version, "dev").allowed  # dev: no approval needed
    staging = approvals.gate("fraud", version, "staging")
    assert not staging.allowed
    one = _approve(act_as, "amira", version, "prod")
    assert not one.allowed
    assert "prod needs 2 distinct approvers other than the registrant; fraud:internal has 1 (amira)" in one.reasons
    again = _approve(act_as, "amira", version, "prod")  # the same person twice still counts once
    assert not again.allowed
    assert _approve(act_as, "amira", version, "staging").allowed
    two = _approve(act_as, "omar", version, "prod")
    assert two.allowed, two.reasons
    assert "approved by amira, omar" in two.reasons
    gate = approvals.gate("fraud", version, "prod")
    assert gate.allowed
    gates = [e for e in audit.entries() if e.action == "release.gate"]
    assert [g.decision for g in gates] == ["allow", "deny", "allow"]  # every decision audited


def test_pii_needs_a_security_officer(db_url: str, signed_model: Callable[[str], str],
                                      act_as: Callable[[str], None]) -> None:
    version = signed_model("pii")
    _approve(act_as, "amira", version, "prod")
    two = _approve(act_as, "omar", version, "prod")
    assert not two.allowed
    assert "prod release of a pii model needs an approval by a security-officer; fraud:pii has none" in two.reasons
    three = _approve(act_as, "sara", version, "prod")
    assert three.allowed, three.reasons
    assert "security-officer approval by sara" in three.reasons


def test_unsigned_model_cannot_reach_prod(roles: Path, act_as: Callable[[str], None], model_dir: Path) -> None:
    act_as("dana")
    registry.register("fraud", "u", model_dir, code_commit="abcdef1")
    _approve(act_as, "amira", "u", "prod")
    decision = _approve(act_as, "omar", "u", "prod")
    assert not decision.allowed and any("is not signed" in r for r in decision.reasons)


def test_revoked_role_withdraws_approval(signed_model: Callable[[str], str], act_as: Callable[[str], None]) -> None:
    from control_plane.access.roles import load_assignments, write_assignments

    version = signed_model("internal")
    _approve(act_as, "amira", version, "prod")
    assert _approve(act_as, "omar", version, "prod").allowed
    assignments = load_assignments() or {}
    assignments["omar"] = ["auditor"]
    write_assignments(assignments)
    gate = approvals.gate("fraud", version, "prod")
    assert not gate.allowed
    assert any("'omar' ignored: they hold neither approver nor security-officer now" in r for r in gate.reasons)


def test_cli_approve(signed_model: Callable[[str], str], capsys: pytest.CaptureFixture[str]) -> None:
    version = signed_model("confidential")
    code, out, err = run_cli(capsys, "--as", "amira", "approve", f"fraud:{version}", "--env", "prod", "-o", "json")
    assert code == 0, err
    body = json.loads(out)
    assert body["allowed"] is False and any("security-officer" in r for r in body["reasons"])
    code, out, err = run_cli(capsys, "--as", "eli", "approve", f"fraud:{version}", "--env", "prod")
    assert code == 4 and "lacks permission 'approve'" in err and "fix:" in err
    code, out, err = run_cli(capsys, "--as", "amira", "approve", f"fraud:{version}", "--env", "qa")
    assert code == 4 and "unknown environment 'qa'" in err
