"""SIGKILL the mlctl process at every step of a release, then `resume`: the release converges to
DONE (or ROLLED_BACK), the gateway never routes to a dead colour, a steady request stream loses
nothing, and the audit trail verifies."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest
from sqlalchemy import select

from control_plane.drivers import gateway
from control_plane.drivers.local import LocalDriver
from control_plane.release.loadgen import LoadStream
from control_plane.release.models import ReleaseRow, TransitionRow
from control_plane.store import session_scope
from tests.cli_runner import start_mlctl
from tests.release.helpers import FAST, mlctl, mlctl_json

pytestmark = pytest.mark.slow

# Before each step's action, and after the actions with side effects (before their commit).
KILL_AT = [
    "VERIFIED",
    "APPROVED",
    "GREEN_APPLIED",
    "GREEN_APPLIED+",
    "GREEN_READY",
    "SMOKE_PASSED",
    "PRE_ANALYSIS_PASSED",
    "SWITCHED",
    "SWITCHED+",
    "POST_ANALYSIS_PASSED",
    "DONE",
]


def _intent_recorded(state: str, after: str) -> bool:
    with session_scope() as s:
        rel = s.scalars(
            select(ReleaseRow).where(ReleaseRow.created_at > after).order_by(ReleaseRow.created_at.desc())
        ).first()
        if rel is None:
            return False
        return (
            s.scalars(
                select(TransitionRow).where(
                    TransitionRow.release_id == rel.id,
                    TransitionRow.to_state == state,
                    TransitionRow.phase == "begin",
                )
            ).first()
            is not None
        )


def _latest() -> ReleaseRow | None:
    with session_scope() as s:
        return s.scalars(select(ReleaseRow).order_by(ReleaseRow.created_at.desc())).first()


def _action_done(state: str, after: str) -> bool:
    """The side effect of STATE's action is visible (for kills after the action, before commit)."""
    rel = _latest()
    if rel is None or rel.created_at <= after or not _intent_recorded(state, after):
        return False
    driver = LocalDriver()
    if state == "GREEN_APPLIED":
        dep = driver.deployed("digits").get(rel.colour)
        return dep is not None and dep.release_id == rel.id
    if state == "SWITCHED":
        return driver.traffic("digits").get(rel.colour) == 100
    raise AssertionError(state)


def _kill_at(state: str, version: str, *extra: str) -> None:
    latest = _latest()
    after = latest.created_at if latest else ""
    env = {"MLCTL_RELEASE_HOLD_AT": f"{state}:60"}
    if state.endswith("+"):
        state = state[:-1]
        reached = lambda: _action_done(state, after)  # noqa: E731
    else:
        reached = lambda: _intent_recorded(state, after)  # noqa: E731
    proc = start_mlctl(
        "release", f"digits:{version}", *FAST, *extra, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 90
    while not reached():
        assert proc.poll() is None, (
            f"mlctl exited early: {proc.stderr.read().decode() if proc.stderr else ''}"
        )
        assert time.monotonic() < deadline, f"never reached {state}"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


def _routes_only_to_live_colours(driver: LocalDriver) -> None:
    for colour, weight in driver.traffic("digits").items():
        if weight > 0:
            assert driver.alive("digits", colour), f"gateway sends {weight}% to dead colour {colour}"


def test_sigkill_at_every_step_then_resume_converges(world):
    world.register("3", "broken")
    code, _v1 = mlctl_json("release", "digits:1", *FAST)
    assert code == 0
    driver = LocalDriver()
    load = LoadStream(
        gateway.url(), "digits", world.samples["v1"].sample_request(), rate=40, threads=2, max_seconds=400
    ).start()
    outcomes = {}
    try:
        version = "2"
        for state in KILL_AT:
            _kill_at(state, version)
            _routes_only_to_live_colours(driver)
            code, view = mlctl_json("release", "resume", "digits")
            outcomes[state] = view["state"]
            assert code == 0 and view["state"] == "DONE", (state, view["reasons"])
            assert view["model"] == f"digits:{version}" and view["weights"][view["colour"]] == 100
            _routes_only_to_live_colours(driver)
            version = "1" if version == "2" else "2"

        _kill_at("ROLLING_BACK", "3")  # a broken candidate, killed while rolling back
        _routes_only_to_live_colours(driver)
        code, view = mlctl_json("release", "resume", "digits")
        outcomes["ROLLING_BACK"] = view["state"]
        assert code == 10 and view["state"] == "ROLLED_BACK"
        _routes_only_to_live_colours(driver)
    finally:
        stats = load.stop()
    assert stats.failed == 0, (stats.errors[:5], [s.status for s in stats.samples if s.status != 200][:5])
    code, out, err = mlctl("audit", "verify", "--output", "json")
    assert code == 0, out + err
    assert set(outcomes) == {*KILL_AT, "ROLLING_BACK"}


def test_one_release_per_service(world):
    proc = start_mlctl(
        "release", "digits:1", *FAST, env={"MLCTL_RELEASE_HOLD_AT": "GREEN_APPLIED:60"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not _intent_recorded("GREEN_APPLIED", ""):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        code, _, err = mlctl("release", "digits:2", *FAST)
        assert code == 7 and "already has a release in progress" in err
        code, _, err = mlctl("release", "resume", "digits")  # the first mlctl is alive: refused
        assert code == 7 and "being driven by" in err
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    code, view = mlctl_json("release", "abort", "digits")
    assert code == 10 and view["state"] == "ROLLED_BACK"
    assert any("aborted by a person" in r for r in view["reasons"])
