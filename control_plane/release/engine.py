"""The release state machine.

``PENDING → VERIFIED → APPROVED → GREEN_APPLIED → GREEN_READY → SMOKE_PASSED →
PRE_ANALYSIS_PASSED → [CANARY_STEP × n | SHADOW] → SWITCHED → POST_ANALYSIS_PASSED → DONE``; a
shadow release without a cutover ends ``SHADOW → SHADOW_DONE`` (see ``release.shadow``); a failure
after something was applied goes ``ROLLING_BACK → ROLLED_BACK``; a gate refusal ends REFUSED
with nothing applied.

How it survives a crash: before acting, the engine commits the *intent* (``target`` = the next
state, a ``begin`` transition row); after acting it commits the new ``state`` together with its
audit entry (one transaction), then emits the event. Every action is idempotent (drivers'
contract), so ``resume`` simply re-runs the action of a recorded intent and carries on. Traffic
only ever moves to a colour that passed readiness in this release, and a rollback moves it back
before removing anything.

One release per service: the ``release_locks`` row is inserted with the release in one
transaction (the primary key makes it atomic) and deleted when the release ends. The row names
the process driving the release; ``resume`` refuses while that process is alive.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from control_plane.drivers.base import Deployment, Driver, other_colour
from control_plane.errors import Conflict, MlctlError, NotFound
from control_plane.release import analysis, gates, shadow, smoke
from control_plane.release.config import ReleaseConfig
from control_plane.release.models import LiveServiceRow, ReleaseRow, ServiceLockRow, TransitionRow
from control_plane.settings import current as settings
from control_plane.settings import state_dir
from control_plane.store import session_scope

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


_SERVICE_RE = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")


class StepFailed(MlctlError):
    """A check failed after something was applied: the release rolls back."""

    def __init__(self, step: str, reasons: list[str]) -> None:
        self.step = step
        self.reasons = reasons
        super().__init__(f"{step} failed: {'; '.join(reasons)}")


class Paused(Exception):
    """The release needs a person (inconclusive analysis); promote or abort continues it."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _holder_alive(holder: str) -> bool:
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine: we cannot tell; treat as gone (resume is explicit)
    from control_plane.local.processes import is_alive

    return int(pid) != os.getpid() and is_alive(int(pid))


@dataclass
class Hooks:
    """Observation points for tests and the bench (never change behaviour)."""

    on_transition: Callable[[str, str, str], None] | None = None  # (release_id, state, phase)
    on_window: Callable[[str, str, float], None] | None = None  # (release_id, window, seconds left)

    def window_tick(self, release_id: str, name: str, seconds_left: float) -> None:
        if self.on_window:
            self.on_window(release_id, name, max(0.0, seconds_left))


def driver_for(env_name: str) -> Driver:
    """The driver for a residency-checked environment (``drivers.select`` picks the kind)."""
    from control_plane.drivers.select import for_environment

    return for_environment(gates.environment(env_name))


# -- store helpers ----------------------------------------------------------------------------
def _load(session: Session, release_id: str) -> ReleaseRow:
    row = session.get(ReleaseRow, release_id)
    if row is None:
        raise NotFound(f"release {release_id} does not exist", hint="see `mlctl release status SERVICE`")
    return row


def active_release(service: str) -> ReleaseRow | None:
    with session_scope() as s:
        lock = s.get(ServiceLockRow, service)
        if lock is None:
            return None
        return s.get(ReleaseRow, lock.release_id)


def latest_release(service: str) -> ReleaseRow | None:
    with session_scope() as s:
        return s.scalars(
            select(ReleaseRow).where(ReleaseRow.service == service).order_by(ReleaseRow.created_at.desc())
        ).first()


def live(service: str) -> LiveServiceRow | None:
    with session_scope() as s:
        return s.get(LiveServiceRow, service)


def transitions(release_id: str) -> list[TransitionRow]:
    with session_scope() as s:
        return list(
            s.scalars(
                select(TransitionRow).where(TransitionRow.release_id == release_id).order_by(TransitionRow.id)
            )
        )


# -- the machine ------------------------------------------------------------------------------
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
        now = _now()
        try:
            with session_scope() as s:
                s.add(ServiceLockRow(service=service, release_id=rid, holder=_holder(), acquired_at=now))
                s.flush()
                s.add(
                    ReleaseRow(
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
                        created_by=_acting_name(),
                        created_at=now,
                        updated_at=now,
                    )
                )
                self._audit(
                    s,
                    "release.create",
                    service,
                    rid,
                    details={
                        "model": f"{model_name}:{version}",
                        "env": env_name,
                        "strategy": config.strategy,
                        "colour": colour,
                    },
                )
        except IntegrityError:
            held = active_release(service)
            where = f"{held.id} ({held.state})" if held else "another release"
            raise Conflict(
                f"{service} already has a release in progress: {where}",
                hint=f"wait for it, or `mlctl release status|resume|abort {service}`",
            ) from None
        self._event(
            "release.created",
            service,
            {
                "release": rid,
                "model": f"{model_name}:{version}",
                "env": env_name,
                "strategy": config.strategy,
            },
        )
        return rid

    def claim(self, service: str) -> ReleaseRow:
        """Make this process the driver of the service's active release (resume/promote/abort)."""
        with session_scope() as s:
            lock = s.get(ServiceLockRow, service)
            if lock is None:
                raise NotFound(
                    f"{service} has no release in progress",
                    hint=f"start one with `mlctl release MODEL:VERSION --service {service}`",
                )
            if _holder_alive(lock.holder):
                raise Conflict(
                    f"release {lock.release_id} of {service} is being driven by {lock.holder}",
                    hint="wait for that mlctl process, or stop it first",
                )
            lock.holder = _holder()
            return _load(s, lock.release_id)

    def request(self, service: str, what: str) -> ReleaseRow:
        """Record a person's decision (promote | abort) on the active release."""
        with session_scope() as s:
            lock = s.get(ServiceLockRow, service)
            if lock is None:
                raise NotFound(f"{service} has no release in progress", hint="nothing to promote or abort")
            row = _load(s, lock.release_id)
            row.requested = what
            row.updated_at = _now()
            self._audit(
                s, f"release.{what}", service, row.id, details={"state": row.state, "paused": row.paused}
            )
            return row

    def run(self, release_id: str) -> ReleaseRow:
        """Drive the release until it ends or pauses for a person."""
        while True:
            with session_scope() as s:
                row = _load(s, release_id)
                s.expunge(row)
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
                with session_scope() as s:
                    return _load(s, release_id)
            except gates.GateRefused as exc:
                self._refuse(row, exc)
            except StepFailed as exc:
                self._fail(row, exc.step, exc.reasons)
            except MlctlError as exc:
                if row.state in (PENDING, VERIFIED, APPROVED) and row.target in (VERIFIED, APPROVED, None):
                    self._refuse(row, gates.GateRefused(row.target or "verify", [exc.message], hint=exc.hint))
                elif row.target == ROLLING_BACK or row.state == ROLLING_BACK:
                    raise  # a rollback that cannot finish: leave the intent for `resume`
                else:
                    self._fail(row, row.target or row.state, [f"{type(exc).__name__}: {exc.message}"])

    # transitions ---------------------------------------------------------------------------------
    def _next(self, row: ReleaseRow, cfg: ReleaseConfig) -> tuple[str, int]:
        if row.target:
            return row.target, row.step
        if row.state == ROLLING_BACK:
            return ROLLED_BACK, row.step
        if row.state == PRE_ANALYSIS_PASSED:
            if cfg.strategy == "canary" and cfg.canary_steps:
                return CANARY_STEP, 0
            if cfg.strategy == "shadow":
                return SHADOW, row.step
            return SWITCHED, row.step
        if row.state == SHADOW:
            return (SWITCHED if cfg.then == "blue-green" else SHADOW_DONE), row.step
        if row.state == CANARY_STEP:
            if row.step + 1 < len(cfg.canary_steps):
                return CANARY_STEP, row.step + 1
            return SWITCHED, row.step
        i = ORDER.index(row.state)
        nxt = ORDER[i + 1]
        return (SWITCHED if nxt == CANARY_STEP else nxt), row.step

    def _advance(self, row: ReleaseRow) -> None:
        cfg = ReleaseConfig.from_dict(json.loads(row.config))
        target, step = self._next(row, cfg)
        if row.target != target or row.step != step:
            self._begin(row.id, target, step)
            _crash_drill_hold(target)
        action = getattr(self, "_to_" + target.lower())
        detail: dict[str, Any] = action(row, cfg, step) or {}
        _crash_drill_hold(target + "+")
        self._commit(row.id, target, step, detail)

    def _begin(self, release_id: str, target: str, step: int, detail: dict[str, Any] | None = None) -> None:
        with session_scope() as s:
            row = _load(s, release_id)
            row.target, row.step, row.updated_at = target, step, _now()
            s.add(
                TransitionRow(
                    release_id=release_id,
                    from_state=row.state,
                    to_state=target,
                    phase="begin",
                    at=row.updated_at,
                    detail=json.dumps(detail or {"step": step}),
                )
            )
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
        with session_scope() as s:
            row = _load(s, release_id)
            prev = row.state
            row.state, row.target, row.step, row.updated_at = state, None, step, _now()
            if state in TERMINAL or state == ROLLING_BACK:
                row.paused = None
            if reasons:
                row.reasons = json.dumps([*json.loads(row.reasons), *reasons])
            s.add(
                TransitionRow(
                    release_id=release_id,
                    from_state=prev,
                    to_state=state,
                    phase="done",
                    at=row.updated_at,
                    detail=json.dumps(detail, default=str),
                )
            )
            self._audit(
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
                s.execute(delete(ServiceLockRow).where(ServiceLockRow.release_id == release_id))
            service, model = row.service, f"{row.model_name}:{row.model_version}"
        if state in TERMINAL:
            _checkpoint_audit()
        self._event(
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
            cur = _load(s, row.id)
            cur.reasons = json.dumps([*json.loads(cur.reasons), *[f"{step}: {r}" for r in reasons]])
            cur.paused = None
            nothing_applied = cur.state in (PENDING, VERIFIED, APPROVED) and cur.target in (
                None,
                VERIFIED,
                APPROVED,
            )
        if nothing_applied:
            self._commit(row.id, REFUSED if step != "abort" else ROLLED_BACK, row.step, {"failed": step})
            return
        self._begin(row.id, ROLLING_BACK, row.step, {"failed": step, "reasons": reasons})
        _crash_drill_hold(ROLLING_BACK)
        self._to_rolling_back(row)
        _crash_drill_hold(ROLLING_BACK + "+")
        self._commit(row.id, ROLLING_BACK, row.step, {"failed": step}, decision="deny", reasons=None)

    # actions (each idempotent) -------------------------------------------------------------------
    def _to_verified(self, row: ReleaseRow, cfg: ReleaseConfig, step: int) -> dict[str, Any]:
        dest = state_dir("releases", row.id) / "model"
        env = gates.environment(row.environment)
        art = gates.verify_signature(row.model_name, row.model_version, dest, env)
        dep = Deployment(
            service=row.service,
            model_name=row.model_name,
            model_version=row.model_version,
            digest=art.digest,
            release_id=row.id,
            storage_uri=art.storage_uri,
            local_path=art.path,
            environment=env.name,
        )
        with session_scope() as s:
            cur = _load(s, row.id)
            cur.digest = art.digest
            cur.deployment = json.dumps(dep.to_dict())
        row.digest, row.deployment = art.digest, json.dumps(dep.to_dict())
        return {"digest": art.digest, "files": len(art.files), "storage_uri": art.storage_uri, "signer": art.signer}

    def _to_approved(self, row: ReleaseRow, cfg: ReleaseConfig, step: int) -> dict[str, Any]:
        env = gates.environment(row.environment)
        dep = Deployment.from_dict(json.loads(row.deployment))
        residency = gates.check_residency(env, dep.storage_uri)
        approvals = gates.check_approvals(row.model_name, row.model_version, env)
        return {"approvals": approvals, "residency": residency}

    def _to_green_applied(self, row: ReleaseRow, cfg: ReleaseConfig, step: int) -> dict[str, Any]:
        self.driver.apply(row.service, row.colour, Deployment.from_dict(json.loads(row.deployment)))
        return {"colour": row.colour}

    def _to_green_ready(self, row: ReleaseRow, cfg: ReleaseConfig, step: int) -> dict[str, Any]:
        deadline = time.monotonic() + cfg.ready_timeout
        start = time.monotonic()
        while True:
            r = self.driver.ready(row.service, row.colour)
            if r.ready:
                return {"seconds": round(time.monotonic() - start, 3)}
            if r.failed or time.monotonic() > deadline:
                why = r.reason if r.failed else f"not ready after {cfg.ready_timeout:.0f}s ({r.reason})"
                raise StepFailed("readiness", [why])
            time.sleep(self.poll)

    def _to_smoke_passed(self, row: ReleaseRow, cfg: ReleaseConfig, step: int) -> dict[str, Any]:
        dep = Deployment.from_dict(json.loads(row.deployment))
        res = smoke.run(
            self.driver.endpoint(row.service, row.colour),
            row.service,
            dep.local_path,
            latency_bound=cfg.smoke_latency_bound,
        )
        if not res.passed:
            raise StepFailed("smoke", res.reasons)
        return {"latency_ms": round((res.latency_seconds or 0) * 1000, 2)}

    def _to_pre_analysis_passed(self, row: ReleaseRow, cfg: ReleaseConfig, step: int) -> dict[str, Any]:
        if cfg.strategy == "rollback" or cfg.pre_analysis_requests <= 0:
            return {
                "skipped": "rollback to a version that served production"
                if cfg.strategy == "rollback"
                else "disabled"
            }
        dep = Deployment.from_dict(json.loads(row.deployment))
        source = self.driver.metrics_source(row.service, row.colour)
        baseline = analysis.begin(source)
        smoke.load(
            self.driver.endpoint(row.service, row.colour),
            row.service,
            dep.local_path,
            cfg.pre_analysis_requests,
        )
        result = analysis.evaluate(
            "pre-promotion", analysis.measure(source, baseline), _thresholds_for_synthetic(cfg)
        )
        self._record_analysis(row.id, result)
        if result.verdict != "pass":
            raise StepFailed("pre-promotion analysis", result.reasons or [result.verdict])
        return {"analysis": result.to_dict()}

    def _to_canary_step(self, row: ReleaseRow, cfg: ReleaseConfig, step: int) -> dict[str, Any]:
        weight = cfg.canary_steps[step]
        weights = {row.colour: weight}
        if row.previous_colour:
            weights[row.previous_colour] = 100 - weight
        else:
            weights[row.colour] = 100  # first release: nothing to split with
        if self.driver.traffic(row.service) != weights:
            self.driver.set_traffic(row.service, weights)
        result = self._window(row, cfg.canary_pause, f"canary step {step + 1} ({weight}%)", cfg)
        return {"weights": weights, "analysis": result}

    def _to_shadow(self, row: ReleaseRow, cfg: ReleaseConfig, step: int) -> dict[str, Any]:
        return shadow.run(self, row, cfg)

    def _to_shadow_done(self, row: ReleaseRow, cfg: ReleaseConfig, step: int) -> dict[str, Any]:
        return shadow.finish(self, row)

    def _to_switched(self, row: ReleaseRow, cfg: ReleaseConfig, step: int) -> dict[str, Any]:
        weights = {row.colour: 100}
        if row.previous_colour and row.previous_colour != row.colour:
            weights[row.previous_colour] = 0
        self.driver.set_traffic(row.service, weights)
        with session_scope() as s:
            cur = _load(s, row.id)
            if cur.switched_at is None:
                cur.switched_at = time.time()
            self._set_live(s, cur)
        return {"weights": weights}

    def _to_post_analysis_passed(self, row: ReleaseRow, cfg: ReleaseConfig, step: int) -> dict[str, Any]:
        if cfg.strategy == "rollback":
            return {"skipped": "rollback"}
        result = self._window(row, cfg.analysis_window, "post-promotion", cfg)
        return {"analysis": result}

    def _to_done(self, row: ReleaseRow, cfg: ReleaseConfig, step: int) -> dict[str, Any]:
        old = row.previous_colour
        if not old or old == row.colour:
            return {}
        deployed = self.driver.deployed(row.service).get(old)
        if deployed is None:
            return {}
        if cfg.scale_down_delay <= 0:
            self.driver.delete(row.service, old)
            return {"scaled_down": old}
        from control_plane.release import reaper

        reaper.schedule(row.service, old, deployed.release_id, cfg.scale_down_delay, row.environment)
        return {"scale_down": {"colour": old, "after_seconds": cfg.scale_down_delay}}

    def _to_rolled_back(self, row: ReleaseRow, cfg: ReleaseConfig, step: int) -> dict[str, Any]:
        return self._to_rolling_back(row)

    def _to_rolling_back(
        self, row: ReleaseRow, cfg: ReleaseConfig | None = None, step: int = 0
    ) -> dict[str, Any]:
        """Traffic back to the previous colour first, then remove the candidate. Idempotent."""
        with session_scope() as s:
            cur = _load(s, row.id)
            prev, cand, service = cur.previous_colour, cur.colour, cur.service
        done: dict[str, Any] = {}
        if shadow.stop_mirror(self.driver, service):  # a shadow's copies stop before anything else
            done["mirror"] = "cleared"
        weights = self.driver.traffic(service)
        if prev and prev != cand and self.driver.deployed(service).get(prev) is not None:
            if weights.get(cand, 0) > 0:
                self.driver.set_traffic(service, {prev: 100, cand: 0})
                done["weights"] = {prev: 100, cand: 0}
            with session_scope() as s:
                self._restore_live(s, _load(s, row.id))
        elif weights.get(cand, 0) > 0:
            from control_plane.drivers import gateway

            # Nothing to go back to (first release): take the route down rather than serve a failed model.
            if self.driver.name == "local":
                gateway.remove_route(service)
            done["route"] = "removed"
            with session_scope() as s:
                s.execute(delete(LiveServiceRow).where(LiveServiceRow.service == service))
        if (
            self.driver.deployed(service).get(cand) is not None
            and self.driver.traffic(service).get(cand, 0) == 0
        ):
            self.driver.delete(service, cand)
            done["removed"] = cand
        return done

    # helpers -----------------------------------------------------------------------------------
    def _window(self, row: ReleaseRow, seconds: float, name: str, cfg: ReleaseConfig) -> dict[str, Any]:
        """Analyse the candidate over ``seconds`` of real traffic; the window survives a crash."""
        source = self.driver.metrics_source(row.service, row.colour)
        with session_scope() as s:
            cur = _load(s, row.id)
            base = json.loads(cur.baseline) if cur.baseline else None
            if base is None or base.get("name") != name:
                base = {"name": name, "t": time.time(), "metrics": analysis.begin(source)}
                cur.baseline = json.dumps(base)
        while time.time() < base["t"] + seconds:
            if self._requested(row.id) in ("abort", "promote"):
                break
            self.hooks.window_tick(row.id, name, base["t"] + seconds - time.time())
            time.sleep(min(self.poll, max(0.0, base["t"] + seconds - time.time())))
        result = analysis.evaluate(name, analysis.measure(source, base["metrics"]), cfg.thresholds)
        promote = self._requested(row.id) == "promote"
        self._record_analysis(row.id, result)
        if result.verdict == "fail":
            raise StepFailed(name, result.reasons)
        if result.verdict == "inconclusive" and not promote:
            with session_scope() as s:
                cur = _load(s, row.id)
                cur.paused = f"{name} inconclusive: {'; '.join(result.reasons)}"
                self._audit(
                    s,
                    "release.paused",
                    cur.service,
                    row.id,
                    reasons=result.reasons,
                    details={"analysis": name},
                )
            self._event("release.paused", row.service, {"release": row.id, "analysis": result.to_dict()})
            raise Paused()
        with session_scope() as s:
            cur = _load(s, row.id)
            cur.baseline, cur.paused = None, None
            if cur.requested == "promote":
                cur.requested = None
        return result.to_dict()

    def _requested(self, release_id: str) -> str | None:
        with session_scope() as s:
            return _load(s, release_id).requested

    def _record_analysis(self, release_id: str, result: analysis.AnalysisResult) -> None:
        with session_scope() as s:
            cur = _load(s, release_id)
            cur.analysis = json.dumps([*json.loads(cur.analysis), result.to_dict()])

    def _set_live(self, s: Session, row: ReleaseRow) -> None:
        cur = s.get(LiveServiceRow, row.service)
        now = _now()
        if cur is None:
            s.add(
                LiveServiceRow(
                    service=row.service,
                    environment=row.environment,
                    live_colour=row.colour,
                    live_version=row.model_version,
                    live_release_id=row.id,
                    updated_at=now,
                )
            )
            return
        if cur.live_release_id == row.id:
            return
        cur.previous_colour, cur.previous_version, cur.previous_release_id = (
            cur.live_colour,
            cur.live_version,
            cur.live_release_id,
        )
        cur.live_colour, cur.live_version, cur.live_release_id = row.colour, row.model_version, row.id
        cur.environment, cur.updated_at = row.environment, now

    def _restore_live(self, s: Session, row: ReleaseRow) -> None:
        cur = s.get(LiveServiceRow, row.service)
        if cur is None or cur.live_release_id != row.id or cur.previous_colour is None:
            return
        cur.live_colour, cur.live_version = cur.previous_colour, cur.previous_version or ""
        cur.live_release_id = cur.previous_release_id or ""
        cur.previous_colour = cur.previous_version = cur.previous_release_id = None
        cur.updated_at = _now()

    @staticmethod
    def _audit(
        s: Session,
        action: str,
        service: str,
        release_id: str,
        *,
        decision: str = "allow",
        reasons: list[str] | None = None,
        digests: dict[str, str] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        from control_plane import audit

        audit.record(
            action=action,
            subject=f"service/{service}",
            decision=decision,
            reasons=reasons or [],
            digests=digests,
            details={"release": release_id, **(details or {})},
            session=s,
        )

    @staticmethod
    def _event(event_type: str, service: str, data: dict[str, Any]) -> None:
        from control_plane import events

        # A sink outage must not leave a half-driven release: delivery problems are the
        # events module's dead-letter business, not the state machine's.
        with contextlib.suppress(MlctlError):
            events.emit(event_type, f"service/{service}", data)


def _checkpoint_audit() -> None:
    """A release that ends gets a signed audit tree head (anchored off the host) covering all of it;
    a signing or anchoring failure is a warning, never a failed release (the entries are durable)."""
    from control_plane import audit
    from control_plane.errors import MlctlError

    try:
        audit.checkpoint(strict=False)
    except MlctlError as exc:
        import sys

        print(f"warning: audit tree head not signed at the end of the release: {exc}", file=sys.stderr)


def _crash_drill_hold(target: str) -> None:
    """``MLCTL_RELEASE_HOLD_AT=STATE[,STATE...]:SECONDS`` holds right after the intent of STATE is
    recorded (before its action); ``STATE+`` holds after the action, before its result is
    committed. Crash drills (and the test suite) use it to kill mlctl at a known point. Off unless set."""
    hold = settings().release_hold_at
    if hold is not None and target in hold.states:
        time.sleep(hold.seconds)


def _thresholds_for_synthetic(cfg: ReleaseConfig) -> analysis.Thresholds:
    # We sent the requests ourselves, so their number is known: never inconclusive.
    t = cfg.thresholds
    return analysis.Thresholds(
        max_error_rate=t.max_error_rate,
        max_p95_seconds=t.max_p95_seconds,
        min_requests=min(t.min_requests, cfg.pre_analysis_requests),
    )


def release_dir(release_id: str) -> Path:
    return state_dir("releases", release_id)


def _acting_name() -> str:
    from control_plane import identity

    return identity.current().name
