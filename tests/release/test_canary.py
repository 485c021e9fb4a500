"""Canary: weighted steps with analysis at each; inconclusive analysis pauses for a person,
`promote` continues and `abort` rolls back. Every transition is also a CloudEvent."""

from __future__ import annotations

import pytest

from control_plane import events
from control_plane.drivers import gateway
from control_plane.drivers.local import LocalDriver
from control_plane.release.loadgen import LoadStream
from tests.release.helpers import FAST, mlctl_json

pytestmark = pytest.mark.slow

CANARY = [
    "--strategy",
    "canary",
    "--steps",
    "20,50",
    "--pause",
    "1.5",
    "--analysis-window",
    "1",
    "--scale-down-delay",
    "60",
    "--pre-analysis-requests",
    "20",
]


def test_canary_steps_with_analysis_then_pause_promote_abort(world):
    code, _ = mlctl_json("release", "digits:1", *FAST)
    assert code == 0
    driver = LocalDriver()
    load = LoadStream(
        gateway.url(), "digits", world.samples["v1"].sample_request(), rate=80, threads=2, max_seconds=120
    ).start()
    try:
        code, view = mlctl_json("release", "digits:2", *CANARY, "--min-requests", "5")
    finally:
        stats = load.stop()
    assert code == 0 and view["state"] == "DONE", view["reasons"]
    steps = [t for t in view["transitions"] if t["to"] == "CANARY_STEP" and t["phase"] == "done"]
    assert len(steps) == 2
    assert [a["name"] for a in view["analysis"]] == [
        "pre-promotion",
        "canary step 1 (20%)",
        "canary step 2 (50%)",
        "post-promotion",
    ]
    assert all(a["verdict"] == "pass" and a["requests"] >= 5 for a in view["analysis"][1:])
    assert stats.failed == 0
    assert len({s.served_by for s in stats.samples}) == 2  # the split really sent traffic to both

    # No traffic now: the first step's analysis is inconclusive and the release waits for a person.
    code, paused = mlctl_json("release", "digits:1", *CANARY, "--min-requests", "20")
    assert code == 11 and paused["paused"] and "inconclusive" in paused["paused"]
    assert paused["weights"] == {"blue": 20, "green": 80}  # v1 returns on blue at 20 %
    code, status = mlctl_json("release", "status", "digits")
    assert status["state"] == "PRE_ANALYSIS_PASSED" and status["in_progress"] == "CANARY_STEP"
    code, promoted = mlctl_json("release", "promote", "digits")
    assert code == 11 and promoted["step"] == 1  # promoted past step 1; step 2 is inconclusive too
    assert promoted["weights"] == {"blue": 50, "green": 50}
    code, aborted = mlctl_json("release", "abort", "digits")
    assert code == 10 and aborted["state"] == "ROLLED_BACK"
    assert aborted["weights"] == {"blue": 0, "green": 100} and aborted["live"]["version"] == "2"
    assert "blue" not in driver.deployed("digits")

    types = [e["type"] for e in events.read_event_log()]
    for expected in (
        "release.created",
        "release.verified",
        "release.switched",
        "release.done",
        "release.paused",
        "release.rolled_back",
    ):
        assert events.TYPE_PREFIX + expected in types
