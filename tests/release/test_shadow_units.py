"""The shadow comparison (pure), its settings, the gateway's mirror configuration (checked by
``nginx -t``) and the refusals a user meets before anything is applied."""

from __future__ import annotations

import pytest

from control_plane.errors import MlctlError
from control_plane.release.analysis import Thresholds
from control_plane.release.config import ReleaseConfig
from control_plane.release.shadow import ShadowThresholds, compare
from tests.release.helpers import mlctl


def _rec(
    rid: str, colour: str, out: list[list[float]], *, mirror: bool, code: int = 200, seconds: float = 0.002
):
    return {
        "request_id": rid,
        "colour": colour,
        "mirror": mirror,
        "code": code,
        "seconds": seconds,
        "outputs": None
        if code != 200
        else [
            {
                "name": "y",
                "shape": [len(out), len(out[0])],
                "datatype": "FP32",
                "data": [v for row in out for v in row],
            }
        ],
    }


T = Thresholds(min_requests=4)


def test_classifier_argmax_agreement_joined_by_request_id():
    records = []
    for i in range(10):
        records.append(_rec(f"r{i}", "blue", [[0.1, 0.9]], mirror=False))
        if i % 2 == 0:  # half the requests mirrored; the candidate disagrees on one of five
            records.append(_rec(f"r{i}", "green", [[0.8, 0.2]] if i == 4 else [[0.3, 0.7]], mirror=True))
    records.append(_rec("stray", "green", [[0.8, 0.2]], mirror=True))  # no production answer: not joined
    records.append(_rec("r1", "blue", [[0.9, 0.1]], mirror=True))  # production's own mirror flag: ignored
    out = compare(records, production="blue", candidate="green", thresholds=T, shadow=ShadowThresholds())
    c = out["comparison"]
    assert (c["production_requests"], c["mirrored_requests"], c["joined"]) == (10, 6, 5)
    assert c["output"] == "classifier" and c["agreement"] == 0.8 and c["disagreeing_request_ids"] == ["r4"]
    assert out["verdict"] == "fail" and "argmax agreement 80.00% < 95.00% over 5 answers" in out["reasons"]
    assert (
        compare(
            records,
            production="blue",
            candidate="green",
            thresholds=T,
            shadow=ShadowThresholds(min_agreement=0.8),
        )["verdict"]
        == "pass"
    )


def test_regression_relative_difference_and_errors_and_latency():
    records = []
    for i in range(8):
        records.append(_rec(f"r{i}", "blue", [[100.0]], mirror=False, seconds=0.010))
        records.append(_rec(f"r{i}", "green", [[100.5 if i else 130.0]], mirror=True, seconds=0.011))
    s = ShadowThresholds(max_relative_difference=0.01, min_agreement=0.85)
    out = compare(records, production="blue", candidate="green", thresholds=T, shadow=s)
    c = out["comparison"]
    assert c["output"] == "regression" and c["agreement"] == 0.875 and c["max_relative_difference"] == 0.3
    assert out["verdict"] == "pass", out["reasons"]

    # The candidate fails two of the same requests that production answered, and is slow.
    records[1] = _rec("r0", "green", [[1.0]], mirror=True, code=500, seconds=0.2)
    records[3] = _rec("r1", "green", [[1.0]], mirror=True, code=503, seconds=0.2)
    for k in range(5, 16, 2):
        records[k]["seconds"] = 0.2
    out = compare(records, production="blue", candidate="green", thresholds=T, shadow=s)
    assert out["verdict"] == "fail" and out["error_rate"] == 0.25
    assert any(r.startswith("candidate error rate 25.00%") for r in out["reasons"])
    assert any("over 2× production's 10.0 ms" in r for r in out["reasons"])

    # A few ms slower than a very fast production is noise, not a regression (the floor).
    fast = [
        _rec(f"q{i}", c, [[1.0]], mirror=c == "green", seconds=0.001 if c == "blue" else 0.004)
        for i in range(8)
        for c in ("blue", "green")
    ]
    assert compare(fast, production="blue", candidate="green", thresholds=T, shadow=s)["verdict"] == "pass"


def test_too_few_joined_requests_is_inconclusive():
    records = [_rec("a", "blue", [[1.0, 0.0]], mirror=False), _rec("a", "green", [[1.0, 0.0]], mirror=True)]
    out = compare(records, production="blue", candidate="green", thresholds=T, shadow=ShadowThresholds())
    assert out["verdict"] == "inconclusive" and "only 1 mirrored requests" in out["reasons"][0]


def test_settings_are_checked_and_stored_with_the_release():
    cfg = ReleaseConfig(
        strategy="shadow",
        mirror_percent=25,
        shadow_window=30,
        then="blue-green",
        shadow=ShadowThresholds(min_agreement=0.9, output="classifier"),
    )
    again = ReleaseConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.shadow.min_agreement == 0.9
    old = {
        k: v
        for k, v in cfg.to_dict().items()
        if k not in ("mirror_percent", "shadow_window", "then", "shadow")
    }
    assert (
        ReleaseConfig.from_dict({**old, "strategy": "blue-green"}).then is None
    )  # releases from before shadow
    with pytest.raises(MlctlError, match="mirror percent 0"):
        ReleaseConfig(strategy="shadow", mirror_percent=0)
    with pytest.raises(MlctlError, match="--then blue-green is not possible with strategy canary"):
        ReleaseConfig(strategy="canary", then="blue-green")
    with pytest.raises(MlctlError, match="--then canary"):
        ReleaseConfig(strategy="shadow", then="canary")
    with pytest.raises(MlctlError, match=r"min-agreement 1\.5"):
        ShadowThresholds(min_agreement=1.5)
    with pytest.raises(MlctlError, match="unknown output kind"):
        ShadowThresholds(output="ranking")  # type: ignore[arg-type]


def test_gateway_mirror_record_survives_weight_changes_and_clears(mlctl_home):
    """The route record the gateway's Lua reads (its traffic behaviour: tests/release/test_gateway.py)."""
    from control_plane.drivers import gateway
    from control_plane.errors import InfraError

    # The first route change starts the gateway (nginx): stop it, or it outlives the test run.
    try:
        gateway.write_route("digits", {"blue": 100}, {"blue": 40001})
        with pytest.raises(InfraError, match="it is not deployed"):
            gateway.set_mirror("digits", "green", 10)
        gateway.write_route("digits", {"blue": 100}, {"blue": 40001, "green": 40002})
        gateway.set_mirror("digits", "green", 10)
        assert gateway.mirror("digits") == {"colour": "green", "percent": 10.0}
        gateway.set_weights("digits", {"blue": 100})  # a weight change keeps it
        assert gateway.mirror("digits") == {"colour": "green", "percent": 10.0}
        gateway.write_route("digits", {"blue": 100}, {"blue": 40001})  # the colour is gone: so is its mirror
        assert gateway.mirror("digits") is None
        gateway.clear_mirror("digits")  # idempotent
        assert gateway.mirror("digits") is None
    finally:
        gateway.down()


def test_shadow_needs_a_production_version_and_valid_options(world):
    code, _, err = mlctl("release", "digits:1", "--strategy", "shadow", "--window", "1")
    assert code != 0 and "digits has no production version to shadow" in err and "blue-green" in err
    code, _, err = mlctl("release", "digits:1", "--strategy", "shadow", "--mirror-percent", "150")
    assert code != 0 and "mirror percent 150 must be between 1 and 100" in err
    code, _, err = mlctl("release", "digits:1", "--strategy", "mirror")
    assert code != 0 and "use --strategy blue-green, canary, shadow" in err
    from control_plane.release import engine

    assert engine.latest_release("digits") is None  # nothing was created


def test_without_request_records_agreement_is_not_measured_and_a_person_decides():
    from control_plane.release.analysis import Measurement
    from control_plane.release.shadow import compare_metrics

    cand = Measurement(requests=200, errors=0, p95_seconds=0.02)
    prod = Measurement(requests=1000, errors=1, p95_seconds=0.02)
    out = compare_metrics(cand, prod, Thresholds())
    assert out["verdict"] == "inconclusive" and out["comparison"]["agreement"] is None
    assert any("output agreement is not measured" in r for r in out["reasons"])
    failing = compare_metrics(Measurement(requests=200, errors=50, p95_seconds=0.02), prod, Thresholds())
    assert failing["verdict"] == "fail"  # what can be measured still fails a bad candidate
