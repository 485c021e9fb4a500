"""Blue-green cutover and rollback under load through the real gateway lose no request."""

from __future__ import annotations

import pytest

from control_plane.drivers import gateway
from control_plane.drivers.local import LocalDriver
from control_plane.release.loadgen import LoadStream
from tests.release.helpers import FAST, mlctl_json

pytestmark = pytest.mark.slow


def test_cutover_and_rollback_lose_no_request_under_load(world):
    code, v1 = mlctl_json("release", "digits:1", "--env", "uae-local", *FAST)
    assert code == 0 and v1["state"] == "DONE", v1
    assert v1["weights"] == {"blue": 100}

    driver = LocalDriver()
    ports = {c: driver.server_address("digits", c).rsplit(":", 1)[1] for c in ("blue",)}
    load = LoadStream(
        gateway.url(),
        "digits",
        world.samples["v1"].sample_request(),
        rate=260,
        threads=8,
        max_requests=30_000,
        max_seconds=150,
    ).start()
    try:
        load.wait_for(1500, timeout=30)
        code, v2 = mlctl_json("release", "digits:2", "--env", "uae-local", *FAST)
        assert code == 0 and v2["state"] == "DONE", v2
        assert v2["weights"] == {"blue": 0, "green": 100}
        ports["green"] = driver.server_address("digits", "green").rsplit(":", 1)[1]
        load.wait_for(load.stats.sent + 1500, timeout=30)

        code, back = mlctl_json("release", "rollback", "digits")
        assert code == 0 and back["state"] == "DONE", back
        assert back["model"] == "digits:1" and back["weights"] == {"blue": 100, "green": 0}
        assert back["analysis"] == []  # instant: the previous colour was still up, no new analysis
        load.wait_for(10_500, timeout=120)
    finally:
        stats = load.stop()

    assert stats.sent >= 10_000
    assert stats.failed == 0, f"{stats.failed} of {stats.sent} failed: {stats.errors[:5]}"
    assert load.achieved_rate >= 200, f"load only reached {load.achieved_rate:.0f} requests/s"
    served = {s.served_by.rsplit(":", 1)[1] for s in stats.samples}
    assert served == {ports["blue"], ports["green"]}  # both colours really answered
