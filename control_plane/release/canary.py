"""The canary step: the candidate takes a growing share of production traffic, judged at each share.

``PRE_ANALYSIS_PASSED → CANARY_STEP(0) → … → CANARY_STEP(n-1) → SWITCHED`` (``states.next_state``).
At step ``i`` the candidate gets ``canary_steps[i]`` % and the previous colour the rest; then an
analysis window of ``canary_pause`` seconds (``release.window``) judges it on real traffic: a
failure rolls back (``release.bluegreen.rolling_back``), an inconclusive one pauses for a person.
The weights are set only when they differ from those in force, so a resumed step does not
disturb traffic, and its window is the one recorded before the crash.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from control_plane.release import window

if TYPE_CHECKING:
    from control_plane.release.config import ReleaseConfig
    from control_plane.release.engine import Engine
    from control_plane.release.models import ReleaseRow


def weights_at(row: ReleaseRow, percent: int) -> dict[str, int]:
    """The split for the candidate at ``percent`` (all of it on a first release: nothing to split with)."""
    if not row.previous_colour:
        return {row.colour: 100}
    return {row.colour: percent, row.previous_colour: 100 - percent}


def canary_step(eng: Engine, row: ReleaseRow, cfg: ReleaseConfig, step: int) -> dict[str, Any]:
    weight = cfg.canary_steps[step]
    weights = weights_at(row, weight)
    if eng.driver.traffic(row.service) != weights:
        eng.driver.set_traffic(row.service, weights)
    result = window.run(eng, row, cfg.canary_pause, f"canary step {step + 1} ({weight}%)", cfg.thresholds)
    return {"weights": weights, "analysis": result}
