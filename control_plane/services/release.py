"""The release verbs: start, status, promote, abort, resume, rollback, list and history.

Each verb takes a :class:`Context`, authorizes (RBAC, and the tier's verified-identity rule for the
environment a release runs in), drives the release engine with the driver the composition root
picks for the environment, and returns a :class:`ReleaseView`. Nothing here prints: progress (the
engine's transitions, analysis countdowns, notes such as "release r-1: digits:2 → uae-local") goes
through the :class:`ReleaseHooks` a front end passes in. The CLI, the demo and drift remediation
all call these functions, so there is one rollback and one place where release RBAC is checked.

A view carries its outcome: ``exit_code`` (0 DONE, 4 refused, 10 rolled back, 11 paused, 12 in
progress, 13 the runtime does not serve what is live), ``refusal`` (the PolicyViolation a front end
raises after showing the view) and ``note`` (what to tell the person after the view).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from control_plane import audit, environments, registry
from control_plane.drivers.base import Driver
from control_plane.drivers.select import for_environment
from control_plane.errors import (
    EXIT_IN_PROGRESS,
    EXIT_PAUSED,
    EXIT_ROLLED_BACK,
    MlctlError,
    NotFound,
    PolicyViolation,
)
from control_plane.release import engine, gates, repository
from control_plane.release.config import ReleaseConfig
from control_plane.release.models import ReleaseRow
from control_plane.release.queries import list_releases as _query_releases
from control_plane.release.view import describe
from control_plane.services.context import Context
from control_plane.services.release_views import ReleaseHooks, ReleaseListView, ReleaseView, status_exit_code
from control_plane.signing import keyring
from control_plane.store import session_scope

if TYPE_CHECKING:
    from blueprints.schema import Environment

__all__ = [
    "ReleaseHooks",
    "ReleaseListView",
    "ReleaseView",
    "abort",
    "history",
    "list_releases",
    "promote",
    "resume",
    "rollback",
    "start",
    "status",
]


# --- authorization and environments --------------------------------------------------------------


def _authorize(ctx: Context, action: str, subject: str, env_name: str | None = None) -> None:
    """RBAC (policies/rbac.rego) as the Context's actor: denials are audited and raise
    PolicyViolation with the fix. With ``env_name``, a staging or prod tier also needs a verified
    identity."""
    env: Environment | None = None
    if env_name is not None:
        try:
            env = ctx.environment(env_name)
        except MlctlError:
            env = None  # an unknown or invalid environment is refused by the release's residency gate
    ctx.authorize(action, subject, env=env)


def _service_env(service: str) -> str | None:
    """The environment a service's releases run in (its tier decides who may act on it)."""
    row = engine.latest_release(service)
    return row.environment if row is not None else None


def _known_environment(env: str) -> None:
    """A typo'd --env is an unknown environment (exit 6) naming those that exist, not a gate refusal."""
    path = Path(env)
    if path.suffix and path.exists():
        return
    if not path.suffix and environments.named_file(env) is not None:
        return
    known = environments.known_environments()
    close = difflib.get_close_matches(env, known, n=1)
    raise NotFound(
        f"unknown environment {env!r}" + (f" (did you mean {close[0]!r}?)" if close else ""),
        hint=f"environments: {', '.join(known)}; or pass a blueprint file path",
    )


def _residency_checked(name: str, version: str, env_name: str) -> Environment:
    """The environment, if it passes the residency gate; otherwise the refusal is recorded (nothing
    is applied) and raised."""
    try:
        return gates.environment(env_name)
    except gates.GateRefused as exc:
        audit.record(
            action="release.refused",
            subject=f"model/{name}:{version}",
            decision="deny",
            reasons=[f"{exc.gate}: {r}" for r in exc.reasons],
            details={"env": env_name},
        )
        raise


def _admission_refusal(name: str, version: str, env: Environment) -> gates.GateRefused | None:
    """For a release driven in the background (the API server): the gates' cheap checks now, so the
    caller gets a refusal with its reason and fix in the response rather than a REFUSED state to
    find later. Whether a key the environment trusts signed the version (the bytes are verified
    again when the engine materializes them), the artifact's residency and the tier's approvals;
    the engine's gate steps run them all again before anything is applied."""
    mv = registry.get_version(name, version)
    try:
        if not mv.signature.signed or not mv.signature.key_id:
            raise PolicyViolation(f"{mv.ref} is not signed", hint=f"sign it first: mlctl model sign {mv.ref}")
        keyring.trusted_key_for(env, mv.signature.key_id, mv.signature.signer_kind)
    except PolicyViolation as exc:
        return gates.GateRefused("signature", [exc.message], hint=exc.hint)
    try:
        gates.check_residency(env, mv.artifact_uri)
        gates.check_approvals(name, version, env)
    except gates.GateRefused as exc:
        return exc
    return None


def _driver_for(env_name: str) -> Driver:
    """The driver of a recorded release's environment (residency-checked again: blueprints change)."""
    return for_environment(gates.environment(env_name))


def _service_driver(service: str) -> tuple[ReleaseRow, Driver]:
    row = engine.active_release(service) or engine.latest_release(service)
    if row is None:
        raise NotFound(f"no release of {service} is recorded", hint="start one: mlctl release NAME:VERSION")
    return row, _driver_for(row.environment)


# --- outcomes ------------------------------------------------------------------------------------


def _refusal_fix(row: ReleaseRow, reasons: list[str]) -> str:
    """The command that fixes the gate that refused (gates name themselves first in each reason)."""
    ref = f"{row.model_name}:{row.model_version}"
    again = f"then: mlctl release {ref} --env {row.environment}"
    text = " ".join(reasons).lower()
    if "approval" in text:
        return f"mlctl approve {ref} --env {row.environment} (an approver), {again}"
    if "signature" in text or "not signed" in text or "unsigned" in text:
        return f"mlctl model sign {ref}, {again}"
    if "residency" in text:
        return f"register the version in {row.environment}'s own registry (mlctl model register ... --store s3), {again}"
    return f"fix what the gate names, {again}"


def _outcome(row: ReleaseRow, driver: Driver) -> ReleaseView:
    """How a run of the engine ended: refused (4), rolled back (10), paused for a person (11), or done."""
    data = describe(row, driver)
    if row.state == engine.REFUSED:
        refusal = PolicyViolation(
            f"release {row.id} refused: {'; '.join(data['reasons'])}",
            hint=_refusal_fix(row, data["reasons"]),
        )
        return ReleaseView(data, row.state, refusal.exit_code, refusal=refusal)
    if row.state == engine.ROLLED_BACK:
        return ReleaseView(data, row.state, EXIT_ROLLED_BACK,
                           note=f"[red]release {row.id} rolled back[/]: {'; '.join(data['reasons'])}")
    if row.paused and row.state not in engine.TERMINAL:
        return ReleaseView(
            data, row.state, EXIT_PAUSED,
            note=f"[yellow]paused[/]: {row.paused}\n  continue with `mlctl release promote {row.service}` "
            f"or roll back with `mlctl release abort {row.service}`",
        )
    return ReleaseView(data, row.state)


def _drive(eng: engine.Engine, release_id: str, driver: Driver, hooks: ReleaseHooks) -> ReleaseView:
    """Run the engine on ``release_id`` here, or hand it to ``hooks.detach`` and return the release as recorded."""
    if hooks.detach is None:
        return _outcome(eng.run(release_id), driver)
    hooks.detach(lambda: _outcome(eng.run(release_id), driver))
    row = repository.get(release_id)
    return ReleaseView(describe(row, driver), row.state, EXIT_IN_PROGRESS,
                       note=f"release {release_id} runs in the background: mlctl release status {row.service}")


def _runtime(view: dict[str, Any], driver: Driver) -> dict[str, Any]:
    """Whether the runtime serves what the registry says is live (a stopped `mlctl local` or a
    deleted InferenceService is shown as such, never as "live")."""
    live = view.get("live")
    if not live:
        return {"serving": None, "detail": "nothing is live yet"}
    if view.get("weights") is None:
        return {"serving": False, "detail": "the runtime's traffic router does not answer (stopped?)"}
    try:
        readiness = driver.ready(view["service"], live["colour"])
    except Exception as exc:  # the runtime is down: say so rather than fail the view
        return {"serving": False, "detail": f"{live['colour']} does not answer: {exc}"}
    if not readiness.ready:
        return {"serving": False, "detail": f"{live['colour']} is not ready: {readiness.reason or 'no answer'}"}
    return {"serving": True, "detail": f"{live['version']} ready on {live['colour']}"}


# --- verbs ---------------------------------------------------------------------------------------


def start(
    ctx: Context,
    name: str,
    version: str,
    env_name: str,
    config: ReleaseConfig | Callable[[], ReleaseConfig],
    service: str | None = None,
    hooks: ReleaseHooks | None = None,
) -> ReleaseView:
    """Release NAME:VERSION to ENV and drive it until it ends or pauses.

    ``config`` may be a function building it: the CLI's flag checks then run after the
    environment, permission and registration checks, in the order they always ran (a bad flag on
    an unregistered version reports the version)."""
    hooks = hooks or ReleaseHooks()
    with ctx.acting():
        _known_environment(env_name)
        _authorize(ctx, "release", f"{name}:{version}@{env_name}", env_name)
        registry.get_version(name, version)  # "not registered" (exit 6), never a gate refusal, nothing recorded
        cfg = config() if callable(config) else config
        # An environment that fails the residency gate is refused here, recorded, nothing applied.
        env = _residency_checked(name, version, env_name)
        driver = for_environment(env)
        eng = engine.Engine(driver, hooks=hooks.engine_hooks())
        rid = eng.start(model_name=name, version=version, env_name=env_name, config=cfg, service=service)
        hooks.note(f"release {rid}: {name}:{version} → {env_name} ({cfg.strategy})")
        if hooks.detach is not None:
            refused = _admission_refusal(name, version, env)
            if refused is not None:
                return _outcome(eng.refuse(rid, refused), driver)
        return _drive(eng, rid, driver, hooks)


def status(ctx: Context, service: str) -> ReleaseView:
    """The service's release in progress (or its latest), with whether the runtime really serves
    the live version; ``exit_code`` is the state's (see the module docstring)."""
    # Read-only, like list and history: no permission is needed, so no identity is resolved.
    row, driver = _service_driver(service)
    data = describe(row, driver)
    data["runtime"] = _runtime(data, driver)
    return ReleaseView(data, row.state, status_exit_code(data))


def resume(ctx: Context, service: str, hooks: ReleaseHooks | None = None) -> ReleaseView:
    """Continue a release whose mlctl process died; converges to DONE or ROLLED_BACK."""
    hooks = hooks or ReleaseHooks()
    with ctx.acting():
        _authorize(ctx, "release.resume", f"service/{service}", _service_env(service))
        _row, driver = _service_driver(service)
        claimed = engine.Engine(driver).claim(service)
        hooks.note(f"resuming {claimed.id} at {claimed.state}" + (f" → {claimed.target}" if claimed.target else ""))
        return _drive(engine.Engine(driver, hooks=hooks.engine_hooks()), claimed.id, driver, hooks)


def promote(ctx: Context, service: str, hooks: ReleaseHooks | None = None) -> ReleaseView:
    """Continue a paused release (inconclusive analysis) or skip the current wait."""
    return _decide(ctx, service, "promote", hooks or ReleaseHooks())


def abort(ctx: Context, service: str, hooks: ReleaseHooks | None = None) -> ReleaseView:
    """Stop the release in progress and roll back (traffic returns to the previous version)."""
    return _decide(ctx, service, "abort", hooks or ReleaseHooks())


def _decide(ctx: Context, service: str, what: str, hooks: ReleaseHooks) -> ReleaseView:
    with ctx.acting():
        _authorize(ctx, f"release.{what}", f"service/{service}", _service_env(service))
        row, driver = _service_driver(service)
        eng = engine.Engine(driver, hooks=hooks.engine_hooks())
        eng.request(service, what)
        try:
            claimed = eng.claim(service)
        except MlctlError:
            # Another live mlctl process drives it; it reads the request at its next check.
            return ReleaseView(None, row.state,
                               note=f"{what} recorded for {row.id}; the mlctl process driving it will act on it")
        return _drive(eng, claimed.id, driver, hooks)


def rollback(ctx: Context, service: str, hooks: ReleaseHooks | None = None) -> ReleaseView:
    """Back to the previous version: abort a release in progress, or re-release the previous version
    (instant while its colour is still up, a redeploy otherwise). The one rollback: the CLI, the demo
    and drift remediation call it."""
    hooks = hooks or ReleaseHooks()
    with ctx.acting():
        _authorize(ctx, "release.rollback", f"service/{service}", _service_env(service))
        if engine.active_release(service) is not None:
            return _decide(ctx, service, "abort", hooks)
        lv = engine.live(service)
        if lv is None or not lv.previous_version or not lv.previous_release_id:
            raise NotFound(
                f"{service} has no previous version to roll back to", hint=f"see `mlctl release status {service}`"
            )
        with session_scope() as s:
            prev = s.get(ReleaseRow, lv.previous_release_id)
            if prev is None:
                raise NotFound(
                    f"release {lv.previous_release_id} is not recorded", hint="release a version explicitly"
                )
            model_name, env_name, prev_cfg = prev.model_name, prev.environment, prev.config
        base = ReleaseConfig.from_dict(json.loads(prev_cfg))
        cfg = ReleaseConfig(
            strategy="rollback",
            ready_timeout=base.ready_timeout,
            smoke_latency_bound=base.smoke_latency_bound,
            scale_down_delay=base.scale_down_delay,
            thresholds=base.thresholds,
        )
        driver = _driver_for(env_name)
        instant = lv.previous_colour is not None and lv.previous_colour in driver.deployed(service)
        eng = engine.Engine(driver, hooks=hooks.engine_hooks())
        rid = eng.start(
            model_name=model_name, version=lv.previous_version, env_name=env_name, config=cfg, service=service
        )
        hooks.note(
            f"rollback {rid}: {service} → {model_name}:{lv.previous_version} "
            f"({'instant: still up on ' + lv.previous_colour if instant and lv.previous_colour else 'redeploy'})"
        )
        return _drive(eng, rid, driver, hooks)


def list_releases(
    ctx: Context,
    *,
    service: str | None = None,
    states: list[str] | None = None,
    model: str | None = None,
    actor: str | None = None,
    since: str | None = None,
) -> ReleaseListView:
    """Releases, newest first, filtered (read-only)."""
    rows = _query_releases(service=service, states=states, model=model, actor=actor, since=since)
    return ReleaseListView("releases", rows)


def history(ctx: Context, service: str) -> ReleaseListView:
    """Every release of SERVICE, newest first, with what replaced what and why it ended."""
    rows = _query_releases(service=service)
    if not rows:
        raise NotFound(f"no release of {service} is recorded", hint="start one: mlctl release NAME:VERSION --env ENV")
    return ReleaseListView(f"history of {service}", rows, history=True)
