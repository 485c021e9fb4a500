"""The service layer on its own (no CLI, no subprocess): register → sign → approve → release
blue-green on uae-local → rollback, each verb as a Context's actor, then the audit trail says who
did what, allowed, and records a denied verb as deny."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from control_plane import audit, identity
from control_plane.access.roles import roles_of
from control_plane.errors import PolicyViolation
from control_plane.release.analysis import Thresholds
from control_plane.release.config import ReleaseConfig
from control_plane.samples import SampleModel, build_sample_model
from control_plane.services import Context, approvals, models
from control_plane.services import release as releases
from tests.release.conftest import _stop_all

pytestmark = pytest.mark.slow

ROLES = """actors:
  dana: [data-scientist]
  eli: [ml-engineer]
  amira: [approver]
  ali: [auditor]
  sam: [data-scientist, approver]
"""
# Short windows, no traffic required: the flow, not the analysis, is under test here.
FAST = ReleaseConfig(strategy="blue-green", analysis_window=1, scale_down_delay=60, pre_analysis_requests=20,
                     thresholds=Thresholds(min_requests=0))


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SampleModel]:
    root = tmp_path_factory.mktemp("service-samples")
    return {v: build_sample_model(root / v, variant=v) for v in ("v1", "v2")}


@pytest.fixture()
def home(mlctl_home: Path) -> Iterator[Path]:
    (mlctl_home / "roles.yaml").write_text(ROLES)
    try:
        yield mlctl_home
    finally:
        _stop_all(mlctl_home)  # model servers, gateway, reapers this test started


def as_(name: str) -> Context:
    """What a front end builds for an identity it has established (here: asserted, dev tier)."""
    return Context.for_actor(identity.Actor(name, "asserted", roles_of(name)))


def test_register_sign_approve_release_rollback_through_the_services(
    home: Path, samples: dict[str, SampleModel]
) -> None:
    dana, eli, amira, ali = as_("dana"), as_("eli"), as_("amira"), as_("ali")
    for version, variant in (("1", "v1"), ("2", "v2")):
        src = home / "src" / variant
        shutil.copytree(samples[variant].path, src)
        models.register(dana, "digits", version, src, code_commit="0" * 40)
        models.sign(eli, "digits", version)

    approval = approvals.approve(amira, "digits", "2", "uae-local")
    assert approval.allowed, approval.reasons
    assert approval.as_json()["env"] == "uae-local" and approval.as_json()["approvers"] == ["amira"]

    notes: list[str] = []
    states: list[str] = []
    hooks = releases.ReleaseHooks(on_transition=lambda _r, state, phase: states.append(f"{state}/{phase}"),
                                  on_note=notes.append)
    v1 = releases.start(eli, "digits", "1", "uae-local", FAST, hooks=hooks)
    assert (v1.state, v1.exit_code, v1.refusal) == ("DONE", 0, None), v1.data
    v2 = releases.start(eli, "digits", "2", "uae-local", FAST, hooks=hooks)
    assert v2.ok and v2.data is not None, v2.data
    assert v2.data["model"] == "digits:2" and v2.data["weights"] == {"blue": 0, "green": 100}
    assert "SWITCHED/done" in states and any(n.startswith(f"release {v2.data['release']}: digits:2") for n in notes)

    # Someone without release.rollback is refused before anything changes, and the refusal is audited.
    with pytest.raises(PolicyViolation) as denied:
        releases.rollback(ali, "digits")
    assert "ali may not release.rollback service/digits" in denied.value.message and denied.value.hint

    back = releases.rollback(eli, "digits", hooks=hooks)
    assert back.ok and back.data is not None, back.data
    assert back.data["model"] == "digits:1" and back.data["strategy"] == "rollback"
    assert back.data["weights"] == {"blue": 100, "green": 0}
    assert any(n.startswith(f"rollback {back.data['release']}: digits → digits:1 (instant") for n in notes)

    now = releases.status(ali, "digits")  # read-only: any identity may look
    assert now.exit_code == 0 and now.data is not None
    assert now.data["runtime"]["serving"] is True and now.data["live"]["version"] == "1"
    assert [r["model"] for r in releases.history(ali, "digits").as_json()] == ["digits:1", "digits:2", "digits:1"]

    trail = audit.entries()
    def by(action: str, **details: str) -> list[tuple[str, str]]:
        return [(e.actor, e.decision) for e in trail
                if e.action == action and all(e.details.get(k) == v for k, v in details.items())]

    assert by("model.register") == [("dana", "allow"), ("dana", "allow")]
    assert by("model.sign") == [("eli", "allow"), ("eli", "allow")]
    assert by("approve") == [("amira", "allow")]
    assert by("release.create", strategy="blue-green") == [("eli", "allow"), ("eli", "allow")]
    assert by("release.create", strategy="rollback") == [("eli", "allow")]
    assert by("release.rollback") == [("ali", "deny")]
    deny = next(e for e in trail if e.action == "release.rollback")
    assert deny.subject == "service/digits" and deny.details.get("check") == "rbac" and deny.reasons
    assert audit.verify().ok


def test_an_approval_by_someone_without_the_role_is_refused_and_audited(
    home: Path, samples: dict[str, SampleModel]
) -> None:
    models.register(as_("dana"), "digits", "1", samples["v1"].path, code_commit="0" * 40)
    with pytest.raises(PolicyViolation) as exc:
        approvals.approve(as_("eli"), "digits", "1", "uae-local")
    assert "eli may not approve digits:1@uae-local" in exc.value.message
    last = audit.entries()[-1]
    assert (last.action, last.actor, last.decision, last.subject) == ("approve", "eli", "deny", "digits:1@uae-local")
    models.register(as_("sam"), "digits", "2", samples["v2"].path, code_commit="0" * 40)
    with pytest.raises(PolicyViolation, match="separation of duties"):  # the registrant never approves
        approvals.approve(as_("sam"), "digits", "2", "uae-local")
    assert [(e.actor, e.decision) for e in audit.entries() if e.action == "approve"] == [
        ("eli", "deny"), ("sam", "deny")]


def test_the_release_services_and_drift_remediation_do_not_load_the_cli() -> None:
    code = ("import sys, control_plane.services.release, control_plane.services.approvals, "
            "control_plane.monitor.production, control_plane.monitor.remediation\n"
            "bad = sorted(m for m in sys.modules if m.startswith('control_plane.cli'))\n"
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
