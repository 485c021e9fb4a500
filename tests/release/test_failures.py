"""A candidate that fails readiness, smoke or analysis never gets production traffic, and the
release ends ROLLED_BACK with its reasons; a post-promotion failure switches traffic back."""

from __future__ import annotations

import pytest

from control_plane.drivers import gateway
from control_plane.drivers.local import LocalDriver
from control_plane.release.loadgen import LoadStream
from tests.release.helpers import FAST, mlctl_json

pytestmark = pytest.mark.slow


def _never_switched(view: dict) -> None:
    states = {t["to"] for t in view["transitions"]}
    assert "SWITCHED" not in states and "CANARY_STEP" not in states
    assert view["state"] == "ROLLED_BACK"
    assert view["weights"] == {"blue": 100}
    assert view["live"]["version"] == "1"


def test_failing_candidates_never_get_traffic_and_roll_back(world):
    world.register("3", "broken")
    world.register("4", "bad-shape")
    code, v1 = mlctl_json("release", "digits:1", *FAST)
    assert code == 0 and v1["state"] == "DONE"
    driver = LocalDriver()
    blue = driver.server_address("digits", "blue").rsplit(":", 1)[1]
    load = LoadStream(
        gateway.url(), "digits", world.samples["v1"].sample_request(), rate=40, threads=2, max_seconds=120
    ).start()
    try:
        code, broken = mlctl_json("release", "digits:3", *FAST, "--ready-timeout", "60")
        assert code == 10
        _never_switched(broken)
        assert any(r.startswith("readiness:") and "exited" in r for r in broken["reasons"]), broken["reasons"]

        code, shape = mlctl_json("release", "digits:4", *FAST)
        assert code == 10
        _never_switched(shape)
        assert any(r.startswith("smoke:") and "shape [1, 9]" in r for r in shape["reasons"]), shape["reasons"]

        code, slow = mlctl_json("release", "digits:2", *FAST, "--max-p95-ms", "0.001")
        assert code == 10
        _never_switched(slow)
        assert any("pre-promotion" in r and "p95" in r for r in slow["reasons"]), slow["reasons"]
        assert slow["analysis"][-1]["verdict"] == "fail"
        assert "green" not in driver.deployed("digits")  # the failed candidate was removed
    finally:
        stats = load.stop()
    assert stats.failed == 0, stats.errors[:5]
    assert {s.served_by.rsplit(":", 1)[1] for s in stats.samples} == {blue}  # only blue ever answered


def test_post_promotion_failure_switches_back(world):
    code, _v1 = mlctl_json("release", "digits:1", *FAST)
    assert code == 0
    load = LoadStream(
        gateway.url(), "digits", world.samples["v1"].sample_request(), rate=60, threads=2, max_seconds=120
    ).start()
    try:
        code, view = mlctl_json(
            "release",
            "digits:2",
            "--analysis-window",
            "2",
            "--pre-analysis-requests",
            "0",
            "--min-requests",
            "10",
            "--max-p95-ms",
            "0.001",
            "--scale-down-delay",
            "60",
        )
    finally:
        stats = load.stop()
    assert code == 10, view
    states = [t["to"] for t in view["transitions"] if t["phase"] == "done"]
    assert "SWITCHED" in states
    assert states[-2:] == ["ROLLING_BACK", "ROLLED_BACK"]
    assert any("post-promotion" in r for r in view["reasons"]), view["reasons"]
    assert view["weights"] == {"blue": 100, "green": 0}
    assert view["live"]["version"] == "1"
    bad = [(s.status, s.served_by) for s in stats.samples if s.status != 200]
    assert stats.failed == 0, (bad[:5], stats.errors[:5])


def test_a_failed_first_release_takes_its_route_down(world):
    """No previous colour to go back to: the engine asks the driver to take the route down
    (``Driver.remove_route``, whatever the driver), then removes the candidate."""
    from control_plane.release import engine
    from control_plane.release.analysis import Thresholds
    from control_plane.release.config import ReleaseConfig

    streams: list[LoadStream] = []

    def on_transition(_rid: str, state: str, phase: str) -> None:
        if (state, phase) == ("SWITCHED", "done"):  # real traffic for the post-promotion window
            load = LoadStream(gateway.url(), "digits", world.samples["v1"].sample_request(), rate=40, threads=2,
                              max_seconds=60)
            streams.append(load.start())

    driver = LocalDriver()
    eng = engine.Engine(driver, hooks=engine.Hooks(on_transition=on_transition))
    cfg = ReleaseConfig(
        analysis_window=2,
        pre_analysis_requests=0,
        scale_down_delay=60,
        thresholds=Thresholds(min_requests=10, max_p95_seconds=0.000001),
    )
    try:
        rid = eng.start(model_name="digits", version="1", env_name="uae-local", config=cfg)
        row = eng.run(rid)
    finally:
        for s in streams:
            s.stop()
    assert streams, "the release never switched"
    assert row.state == "ROLLED_BACK"
    done = [t for t in engine.transitions(rid) if t.phase == "done"]
    assert [t.to_state for t in done][-2:] == ["ROLLING_BACK", "ROLLED_BACK"]
    assert gateway.routes("digits") == {}  # its clients get 404, not a failed model
    assert driver.deployed("digits") == {}
    assert engine.live("digits") is None and engine.active_release("digits") is None
