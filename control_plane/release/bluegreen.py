"""The blue-green steps: the candidate on the idle colour, checked, then the switch and back.

``GREEN_APPLIED → GREEN_READY → SMOKE_PASSED → PRE_ANALYSIS_PASSED`` deploy the candidate on
the colour that serves nothing and check it without production traffic (readiness, a smoke
inference, synthetic requests analysed); ``SWITCHED`` moves all traffic in one driver call;
``POST_ANALYSIS_PASSED`` judges real traffic; ``DONE`` scales the old colour down (at once or
after ``scale_down_delay``, so an instant rollback stays possible). ``ROLLING_BACK`` is the way
back from any of them: traffic first, then the candidate is removed.

Every release runs the candidate checks and the way back; canary (``release.canary``) and
shadow (``release.shadow``) releases put their own steps between PRE_ANALYSIS_PASSED and the
switch. Each step is idempotent (the drivers' contract), so ``resume`` may run it again.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from control_plane.release import analysis, repository, shadow, smoke, window
from control_plane.release.states import StepFailed
from control_plane.store import session_scope

if TYPE_CHECKING:
    from control_plane.release.config import ReleaseConfig
    from control_plane.release.engine import Engine
    from control_plane.release.models import ReleaseRow


def green_applied(eng: Engine, row: ReleaseRow, cfg: ReleaseConfig, step: int) -> dict[str, Any]:
    eng.driver.apply(row.service, row.colour, repository.deployment_of(row))
    return {"colour": row.colour}


def green_ready(eng: Engine, row: ReleaseRow, cfg: ReleaseConfig, step: int) -> dict[str, Any]:
    deadline = time.monotonic() + cfg.ready_timeout
    start = time.monotonic()
    while True:
        r = eng.driver.ready(row.service, row.colour)
        if r.ready:
            return {"seconds": round(time.monotonic() - start, 3)}
        if r.failed or time.monotonic() > deadline:
            why = r.reason if r.failed else f"not ready after {cfg.ready_timeout:.0f}s ({r.reason})"
            raise StepFailed("readiness", [why])
        time.sleep(eng.poll)


def smoke_passed(eng: Engine, row: ReleaseRow, cfg: ReleaseConfig, step: int) -> dict[str, Any]:
    res = smoke.run(
        eng.driver.endpoint(row.service, row.colour),
        row.service,
        repository.deployment_of(row).local_path,
        latency_bound=cfg.smoke_latency_bound,
    )
    if not res.passed:
        raise StepFailed("smoke", res.reasons)
    return {"latency_ms": round((res.latency_seconds or 0) * 1000, 2)}


def pre_analysis_passed(eng: Engine, row: ReleaseRow, cfg: ReleaseConfig, step: int) -> dict[str, Any]:
    if cfg.strategy == "rollback" or cfg.pre_analysis_requests <= 0:
        return {
            "skipped": "rollback to a version that served production"
            if cfg.strategy == "rollback"
            else "disabled"
        }
    source = eng.driver.metrics_source(row.service, row.colour)
    baseline = analysis.begin(source)
    smoke.load(
        eng.driver.endpoint(row.service, row.colour),
        row.service,
        repository.deployment_of(row).local_path,
        cfg.pre_analysis_requests,
    )
    result = analysis.evaluate(
        "pre-promotion", analysis.measure(source, baseline), _thresholds_for_synthetic(cfg)
    )
    repository.record_analysis(row.id, result.to_dict())
    if result.verdict != "pass":
        raise StepFailed("pre-promotion analysis", result.reasons or [result.verdict])
    return {"analysis": result.to_dict()}


def switched(eng: Engine, row: ReleaseRow, cfg: ReleaseConfig, step: int) -> dict[str, Any]:
    weights = {row.colour: 100}
    if row.previous_colour and row.previous_colour != row.colour:
        weights[row.previous_colour] = 0
    eng.driver.set_traffic(row.service, weights)
    with session_scope() as s:
        cur = repository.load(s, row.id)
        if cur.switched_at is None:
            cur.switched_at = time.time()
        repository.set_live(s, cur)
    return {"weights": weights}


def post_analysis_passed(eng: Engine, row: ReleaseRow, cfg: ReleaseConfig, step: int) -> dict[str, Any]:
    if cfg.strategy == "rollback":
        return {"skipped": "rollback"}
    return {"analysis": window.run(eng, row, cfg.analysis_window, "post-promotion", cfg.thresholds)}


def done(eng: Engine, row: ReleaseRow, cfg: ReleaseConfig, step: int) -> dict[str, Any]:
    old = row.previous_colour
    if not old or old == row.colour:
        return {}
    deployed = eng.driver.deployed(row.service).get(old)
    if deployed is None:
        return {}
    if cfg.scale_down_delay <= 0:
        eng.driver.delete(row.service, old)
        return {"scaled_down": old}
    # The reaper runs as ``python -m control_plane.release.reaper``: importing it with the package
    # would load it twice there (runpy's "found in sys.modules" warning).
    from control_plane.release import reaper  # lazy: runs as __main__ (runpy would load it twice)

    reaper.schedule(row.service, old, deployed.release_id, cfg.scale_down_delay, row.environment)
    return {"scale_down": {"colour": old, "after_seconds": cfg.scale_down_delay}}


def rolling_back(eng: Engine, row: ReleaseRow, cfg: ReleaseConfig | None = None, step: int = 0) -> dict[str, Any]:
    """Traffic back to the previous colour first, then remove the candidate. Idempotent."""
    driver = eng.driver
    with session_scope() as s:
        cur = repository.load(s, row.id)
        prev, cand, service = cur.previous_colour, cur.colour, cur.service
    done: dict[str, Any] = {}
    if shadow.stop_mirror(driver, service):  # a shadow's copies stop before anything else
        done["mirror"] = "cleared"
    weights = driver.traffic(service)
    if prev and prev != cand and driver.deployed(service).get(prev) is not None:
        if weights.get(cand, 0) > 0:
            driver.set_traffic(service, {prev: 100, cand: 0})
            done["weights"] = {prev: 100, cand: 0}
        with session_scope() as s:
            repository.restore_live(s, repository.load(s, row.id))
    elif weights.get(cand, 0) > 0:
        # Nothing to go back to (first release): take the route down rather than serve a failed model.
        driver.remove_route(service)
        done["route"] = "removed"
        repository.drop_live(service)
    if driver.deployed(service).get(cand) is not None and driver.traffic(service).get(cand, 0) == 0:
        driver.delete(service, cand)
        done["removed"] = cand
    return done


def _thresholds_for_synthetic(cfg: ReleaseConfig) -> analysis.Thresholds:
    # We sent the requests ourselves, so their number is known: never inconclusive.
    t = cfg.thresholds
    return analysis.Thresholds(
        max_error_rate=t.max_error_rate,
        max_p95_seconds=t.max_p95_seconds,
        min_requests=min(t.min_requests, cfg.pre_analysis_requests),
    )
