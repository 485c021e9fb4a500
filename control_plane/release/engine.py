"""The release loop: intent, action, commit, until the release ends or needs a person.

The states and their order are in ``release.states``; the steps in ``release.admission`` (the
gates), ``release.bluegreen`` (the colours, the switch and the way back), ``release.canary`` and
``release.shadow``; the store in ``release.repository``. This module only drives them.

How it survives a crash: before acting, the engine commits the *intent* (``target`` = the next
state, a ``begin`` transition row); after acting it commits the new ``state`` together with its
audit entry (one transaction), then emits the event. Every action is idempotent (drivers'
contract), so ``resume`` simply re-runs the action of a recorded intent and carries on. Traffic
only ever moves to a colour that passed readiness in this release, and a rollback moves it back
before removing anything.

One release per service: the lock row is taken with the release in one transaction and dropped
when it ends (``repository.create`` / ``claim``); ``resume`` refuses while its holder is alive.
"""

from __future__ import annotations

import json
import re
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from control_plane import audit, identity
from control_plane.drivers.base import Driver, other_colour
from control_plane.errors import MlctlError
from control_plane.release import admission, bluegreen, canary, gates, record, repository, shadow
from control_plane.release.config import ReleaseConfig
from control_plane.release.models import ReleaseRow
from control_plane.release.repository import active_release, latest_release, live, transitions  # noqa: F401  (re-exported)
from control_plane.release.repository import load as _load  # noqa: F401  (re-exported)
from control_plane.release.states import (  # noqa: F401  (re-exported: the names importers use today)
    APPLIED_STATES,
    APPROVED,
    CANARY_STEP,
    DONE,
    GREEN_APPLIED,
    GREEN_READY,
    ORDER,
    PENDING,
    POST_ANALYSIS_PASSED,
    PRE_ANALYSIS_PASSED,
    REFUSED,
    ROLLED_BACK,
    ROLLING_BACK,
    SHADOW,
    SHADOW_DONE,
    SMOKE_PASSED,
    SWITCHED,
    TERMINAL,
    VERIFIED,
    Paused,
    StepFailed,
    next_state,
    nothing_applied,
)
from control_plane.settings import current as settings
from control_plane.settings import state_dir
from control_plane.store import session_scope

_SERVICE_RE = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")

Step = Callable[["Engine", ReleaseRow, ReleaseConfig, int], dict[str, Any]]
# The action that reaches each state (each idempotent: ``resume`` may run it again).
STEPS: dict[str, Step] = {
    VERIFIED: admission.verified,
    APPROVED: admission.approved,
    GREEN_APPLIED: bluegreen.green_applied,
    GREEN_READY: bluegreen.green_ready,
    SMOKE_PASSED: bluegreen.smoke_passed,
    PRE_ANALYSIS_PASSED: bluegreen.pre_analysis_passed,
    CANARY_STEP: canary.canary_step,
    SHADOW: shadow.run,
    SHADOW_DONE: shadow.finish,
    SWITCHED: bluegreen.switched,
    POST_ANALYSIS_PASSED: bluegreen.post_analysis_passed,
    DONE: bluegreen.done,
    ROLLING_BACK: bluegreen.rolling_back,
    ROLLED_BACK: bluegreen.rolling_back,  # a recorded ROLLING_BACK finishes by running it once more
}


@dataclass
class Hooks:
    """Observation points for tests and the bench (never change behaviour)."""

    on_transition: Callable[[str, str, str], None] | None = None  # (release_id, state, phase)
    on_window: Callable[[str, str, float], None] | None = None  # (release_id, window, seconds left)

    def window_tick(self, release_id: str, name: str, seconds_left: float) -> None:
        if self.on_window:
            self.on_window(release_id, name, max(0.0, seconds_left))


class Engine:
    def __init__(self, driver: Driver, *, hooks: Hooks | None = None, poll: float = 0.2) -> None:
        self.driver = driver
        self.hooks = hooks or Hooks()
        self.poll = poll

    # public verbs ------------------------------------------------------------------------------
    def start(
        self,
        *,
        model_name: str,
        version: str,
        env_name: str,
        config: ReleaseConfig,
        service: str | None = None,
    ) -> str:
        """Create the release and take the service's lock atomically; returns the release id."""
        service = service or model_name
        if not _SERVICE_RE.match(service):
            raise MlctlError(
                f"service name {service!r} is not a DNS label (it names routes and InferenceServices)",
                hint="pass --service NAME with lowercase letters, digits and '-' (at most 63)",
            )
        rid = "rel-" + datetime.now(UTC).strftime("%Y%m%d%H%M%S") + "-" + secrets.token_hex(3)
        current = live(service)
        if config.strategy == "shadow":
            shadow.check_startable(self.driver, service, current.live_colour if current else None)
        colour = "blue" if current is None else other_colour(current.live_colour)
        now = repository.now()
        row = ReleaseRow(
            id=rid,
            service=service,
            model_name=model_name,
            model_version=version,
            digest="",
            environment=env_name,
            strategy=config.strategy,
            state=PENDING,
            target=None,
            step=0,
            colour=colour,
            previous_colour=current.live_colour if current else None,
            previous_version=current.live_version if current else None,
            paused=None,
            requested=None,
            config=json.dumps(config.to_dict()),
            deployment="{}",
            analysis="[]",
            reasons="[]",
            baseline=None,
            switched_at=None,
            created_by=identity.current().name,
            created_at=now,
            updated_at=now,
        )
        model = f"{model_name}:{version}"
        details = {"model": model, "env": env_name, "strategy": config.strategy, "colour": colour}
        repository.create(row, details=details)
        record.emit(
            "release.created",
            service,
            {"release": rid, "model": model, "env": env_name, "strategy": config.strategy},
        )
        return rid

    def refuse(self, release_id: str, exc: gates.GateRefused) -> ReleaseRow:
        """End a release that has applied nothing REFUSED, audited as the gate steps would (the
        API server's admission checks, run in the request)."""
        row = repository.get(release_id)
        if not nothing_applied(row.state, row.target):
            raise MlctlError(f"release {release_id} is past its gates ({row.state})")
        self._refuse(row, exc)
        return repository.get(release_id)

    def claim(self, service: str) -> ReleaseRow:
        """Make this process the driver of the service's active release (resume/promote/abort)."""
        return repository.claim(service)

    def request(self, service: str, what: str) -> ReleaseRow:
        """Record a person's decision (promote | abort) on the active release."""
        return repository.request(service, what)

    def run(self, release_id: str) -> ReleaseRow:
        """Drive the release until it ends or pauses for a person."""
        while True:
            row = repository.get(release_id)
            if row.state in TERMINAL:
                return row
            if row.requested == "abort" and row.state not in (ROLLING_BACK,) and row.target != ROLLING_BACK:
                self._fail(row, "abort", ["aborted by a person (mlctl release abort)"])
                continue
            if row.paused and row.requested != "promote":
                return row
            try:
                self._advance(row)
            except Paused:
                return repository.get(release_id)
            except gates.GateRefused as exc:
                self._refuse(row, exc)
            except StepFailed as exc:
                self._fail(row, exc.step, exc.reasons)
            except MlctlError as exc:
                if nothing_applied(row.state, row.target):
                    self._refuse(row, gates.GateRefused(row.target or "verify", [exc.message], hint=exc.hint))
                elif row.target == ROLLING_BACK or row.state == ROLLING_BACK:
                    raise  # a rollback that cannot finish: leave the intent for `resume`
                else:
                    self._fail(row, row.target or row.state, [f"{type(exc).__name__}: {exc.message}"])

    # intent, action, commit --------------------------------------------------------------------
    def _advance(self, row: ReleaseRow) -> None:
        cfg = repository.config_of(row)
        target, step = next_state(row.state, row.target, row.step, cfg)
        if row.target != target or row.step != step:
            self._begin(row.id, target, step)
            _crash_drill_hold(target)
        detail: dict[str, Any] = STEPS[target](self, row, cfg, step) or {}
        _crash_drill_hold(target + "+")
        self._commit(row.id, target, step, detail)

    def _begin(self, release_id: str, target: str, step: int, detail: dict[str, Any] | None = None) -> None:
        """Commit the intent: ``target`` is what the next action reaches."""
        with session_scope() as s:
            row = repository.load(s, release_id)
            row.target, row.step, row.updated_at = target, step, repository.now()
            repository.add_transition(s, release_id, row.state, target, "begin", row.updated_at, detail or {"step": step})
        if self.hooks.on_transition:
            self.hooks.on_transition(release_id, target, "begin")

    def _commit(
        self,
        release_id: str,
        state: str,
        step: int,
        detail: dict[str, Any],
        decision: str = "allow",
        reasons: list[str] | None = None,
    ) -> None:
        """Commit the state reached, its transition row and its audit entry in one transaction."""
        with session_scope() as s:
            row = repository.load(s, release_id)
            prev = row.state
            row.state, row.target, row.step, row.updated_at = state, None, step, repository.now()
            if state in TERMINAL or state == ROLLING_BACK:
                row.paused = None
            if reasons:
                repository.add_reasons(row, reasons)
            repository.add_transition(s, release_id, prev, state, "done", row.updated_at, detail)
            record.audit(
                s,
                "release.transition",
                row.service,
                release_id,
                decision=decision,
                reasons=reasons or [],
                digests={"model": row.digest} if row.digest else None,
                details={
                    "from": prev,
                    "to": state,
                    "step": step,
                    "model": f"{row.model_name}:{row.model_version}",
                    **detail,
                },
            )
            if state in TERMINAL:
                repository.release_lock(s, release_id)
            service, model = row.service, f"{row.model_name}:{row.model_version}"
        if state in TERMINAL:
            _checkpoint_audit()
        record.emit(
            f"release.{state.lower()}",
            service,
            {"release": release_id, "model": model, "from": prev, "step": step, **detail},
        )
        if self.hooks.on_transition:
            self.hooks.on_transition(release_id, state, "done")

    def _refuse(self, row: ReleaseRow, exc: gates.GateRefused) -> None:
        self._commit(
            row.id,
            REFUSED,
            row.step,
            {"gate": exc.gate},
            decision="deny",
            reasons=[f"{exc.gate}: {r}" for r in exc.reasons],
        )

    def _fail(self, row: ReleaseRow, step: str, reasons: list[str]) -> None:
        with session_scope() as s:
            cur = repository.load(s, row.id)
            repository.add_reasons(cur, [f"{step}: {r}" for r in reasons])
            cur.paused = None
            untouched = nothing_applied(cur.state, cur.target)
        if untouched:
            self._commit(row.id, REFUSED if step != "abort" else ROLLED_BACK, row.step, {"failed": step})
            return
        self._begin(row.id, ROLLING_BACK, row.step, {"failed": step, "reasons": reasons})
        _crash_drill_hold(ROLLING_BACK)
        bluegreen.rolling_back(self, row)
        _crash_drill_hold(ROLLING_BACK + "+")
        self._commit(row.id, ROLLING_BACK, row.step, {"failed": step}, decision="deny", reasons=None)


def _checkpoint_audit() -> None:
    """A release that ends gets a signed audit tree head (anchored off the host) covering all of it;
    a signing or anchoring failure is a warning, never a failed release (the entries are durable)."""
    try:
        audit.checkpoint(strict=False)
    except MlctlError as exc:
        print(f"warning: audit tree head not signed at the end of the release: {exc}", file=sys.stderr)


def _crash_drill_hold(target: str) -> None:
    """``MLCTL_RELEASE_HOLD_AT=STATE[,STATE...]:SECONDS`` holds right after the intent of STATE is
    recorded (before its action); ``STATE+`` holds after the action, before its result is
    committed. Crash drills (and the test suite) use it to kill mlctl at a known point. Off unless set."""
    hold = settings().release_hold_at
    if hold is not None and target in hold.states:
        time.sleep(hold.seconds)


def release_dir(release_id: str) -> Path:
    return state_dir("releases", release_id)
