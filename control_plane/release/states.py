"""The release states, the order they come in, and what a step can end in besides success.

``PENDING → VERIFIED → APPROVED → GREEN_APPLIED → GREEN_READY → SMOKE_PASSED →
PRE_ANALYSIS_PASSED → [CANARY_STEP × n | SHADOW] → SWITCHED → POST_ANALYSIS_PASSED → DONE``; a
shadow release without a cutover ends ``SHADOW → SHADOW_DONE`` (see ``release.shadow``); a failure
after something was applied goes ``ROLLING_BACK → ROLLED_BACK``; a gate refusal ends REFUSED
with nothing applied.

:func:`next_state` is the whole graph in one place: it reads only what is recorded on the release
(its state, an intent in progress, the canary step) and the release's stored config, so a
resumed release takes exactly the path the crashed one would have.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from control_plane.errors import MlctlError

if TYPE_CHECKING:
    from control_plane.release.config import ReleaseConfig

PENDING, VERIFIED, APPROVED = "PENDING", "VERIFIED", "APPROVED"
GREEN_APPLIED, GREEN_READY, SMOKE_PASSED = "GREEN_APPLIED", "GREEN_READY", "SMOKE_PASSED"
PRE_ANALYSIS_PASSED, CANARY_STEP, SWITCHED = "PRE_ANALYSIS_PASSED", "CANARY_STEP", "SWITCHED"
POST_ANALYSIS_PASSED, DONE = "POST_ANALYSIS_PASSED", "DONE"
ROLLING_BACK, ROLLED_BACK, REFUSED = "ROLLING_BACK", "ROLLED_BACK", "REFUSED"
SHADOW, SHADOW_DONE = "SHADOW", "SHADOW_DONE"  # SHADOW_DONE: compared, production unchanged
TERMINAL = frozenset({DONE, ROLLED_BACK, REFUSED, SHADOW_DONE})
APPLIED_STATES = frozenset(
    {
        GREEN_APPLIED,
        GREEN_READY,
        SMOKE_PASSED,
        PRE_ANALYSIS_PASSED,
        CANARY_STEP,
        SHADOW,
        SWITCHED,
        POST_ANALYSIS_PASSED,
    }
)
ORDER = (
    PENDING,
    VERIFIED,
    APPROVED,
    GREEN_APPLIED,
    GREEN_READY,
    SMOKE_PASSED,
    PRE_ANALYSIS_PASSED,
    CANARY_STEP,
    SWITCHED,
    POST_ANALYSIS_PASSED,
    DONE,
)
# Before GREEN_APPLIED nothing runs anywhere: a failure there is a refusal, not a rollback.
GATE_STATES = (PENDING, VERIFIED, APPROVED)


def nothing_applied(state: str, target: str | None) -> bool:
    """True while the release has only checked gates (its intent, if any, is a gate too)."""
    return state in GATE_STATES and target in (None, VERIFIED, APPROVED)


def next_state(state: str, target: str | None, step: int, cfg: ReleaseConfig) -> tuple[str, int]:
    """The state the release moves to next, and the canary step it will be at.

    A recorded intent (``target``) always wins: that is how ``resume`` re-runs the interrupted action."""
    if target:
        return target, step
    if state == ROLLING_BACK:
        return ROLLED_BACK, step
    if state == PRE_ANALYSIS_PASSED:
        if cfg.strategy == "canary" and cfg.canary_steps:
            return CANARY_STEP, 0
        if cfg.strategy == "shadow":
            return SHADOW, step
        return SWITCHED, step
    if state == SHADOW:
        return (SWITCHED if cfg.then == "blue-green" else SHADOW_DONE), step
    if state == CANARY_STEP:
        if step + 1 < len(cfg.canary_steps):
            return CANARY_STEP, step + 1
        return SWITCHED, step
    nxt = ORDER[ORDER.index(state) + 1]
    return (SWITCHED if nxt == CANARY_STEP else nxt), step


class StepFailed(MlctlError):
    """A check failed after something was applied: the release rolls back."""

    def __init__(self, step: str, reasons: list[str]) -> None:
        self.step = step
        self.reasons = reasons
        super().__init__(f"{step} failed: {'; '.join(reasons)}")


class Paused(Exception):
    """The release needs a person (inconclusive analysis); promote or abort continues it."""
