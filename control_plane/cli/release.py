"""``mlctl release``: put a signed, approved model version into production, and take it out.

    mlctl release NAME:VERSION --env ENV --strategy blue-green|canary
    mlctl release NAME:VERSION --strategy shadow --mirror-percent 10 --window 300 [--then blue-green]
    mlctl release status|promote|abort|resume|rollback SERVICE

``mlctl release NAME:VERSION ...`` is short for ``mlctl release start NAME:VERSION ...``.
Exit codes: 0 DONE or SHADOW_DONE; 4 refused by a gate; 10 ROLLED_BACK; 11 paused for a person.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from control_plane.errors import (
    EXIT_DEGRADED,
    EXIT_IN_PROGRESS,
    EXIT_PAUSED,
    EXIT_ROLLED_BACK,
    MlctlError,
    NotFound,
    PolicyViolation,
    UsageError,
)
from control_plane.output import OutputFormat, OutputOption, console, emit_json, info, table
from control_plane.release import engine
from control_plane.release.analysis import Thresholds
from control_plane.release.config import STRATEGIES, ReleaseConfig
from control_plane.release.models import ReleaseRow
from control_plane.release.shadow import ShadowThresholds
from control_plane.release.view import describe


class _StartByDefault(TyperGroup):
    """``mlctl release digits:3 ...`` runs ``start``; named sub-commands run as usual."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        # Only a NAME:VERSION is the shorthand; any other word is a sub-command, so a typo
        # (`release statsu digits`) is a usage error naming the closest command, never a release.
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            if ":" in args[0]:
                args = ["start", *args]
            else:
                import difflib

                close = difflib.get_close_matches(args[0], list(self.commands), n=1)
                hint = (f"did you mean `mlctl release {close[0]}`?" if close else
                        f"sub-commands: {', '.join(sorted(self.commands))}; to release, give NAME:VERSION")
                raise UsageError(f"`mlctl release {args[0]}`: no such sub-command, and not NAME:VERSION",
                                 hint=hint)
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_StartByDefault,
    no_args_is_help=True,
    help="Release a model version (blue-green, canary or shadow) and manage releases in progress.\n\n"
    "`mlctl release NAME:VERSION --env ENV` is short for `mlctl release start ...`.\n\n"
    "Shadow first, then cut over if the candidate agrees with production:\n\n"
    "    mlctl release digits:2 --strategy shadow --mirror-percent 20 --window 300 --then blue-green",
)

EnvOption = Annotated[str, typer.Option("--env", "-e", help="Environment (blueprint name or file).")]


def _authorize(action: str, subject: str, env_name: str | None = None) -> None:
    """RBAC (policies/rbac.rego): denials are audited and raise PolicyViolation with the fix. With
    ``env_name``, a staging or prod tier also needs a verified identity."""
    from control_plane.access import authorize
    from control_plane.environments import resolve

    env = None
    if env_name is not None:
        try:
            env = resolve(env_name)
        except MlctlError:
            env = None  # an unknown or invalid environment is refused by the release's residency gate
    authorize(action, subject, env=env)


def _service_env(service: str) -> str | None:
    """The environment a service's releases run in (its tier decides who may act on it)."""
    row = engine.latest_release(service)
    return row.environment if row is not None else None


def _parse_ref(ref: str) -> tuple[str, str]:
    name, sep, version = ref.partition(":")
    if not sep or not name or not version:
        raise MlctlError(f"{ref!r} is not NAME:VERSION", hint="e.g. mlctl release digits:2 --env uae-local")
    return name, version


def _steps(raw: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in raw.split(",") if x.strip())
    except ValueError:
        raise MlctlError(
            f"--steps {raw!r} is not a list of percentages", hint="e.g. --steps 10,25,50"
        ) from None


def _finish(row: ReleaseRow, output: OutputFormat, driver: Any) -> None:
    view = describe(row, driver)
    if output is OutputFormat.json:
        emit_json(view)
    else:
        _print(view)
    if row.state == engine.REFUSED:
        raise PolicyViolation(
            f"release {row.id} refused: {'; '.join(view['reasons'])}",
            hint=_refusal_fix(row, view["reasons"]),
        )
    if row.state == engine.ROLLED_BACK:
        info(f"[red]release {row.id} rolled back[/]: {'; '.join(view['reasons'])}")
        raise typer.Exit(EXIT_ROLLED_BACK)
    if row.paused and row.state not in engine.TERMINAL:
        info(
            f"[yellow]paused[/]: {row.paused}\n  continue with `mlctl release promote {row.service}` "
            f"or roll back with `mlctl release abort {row.service}`"
        )
        raise typer.Exit(EXIT_PAUSED)


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


def _print(view: dict[str, Any]) -> None:
    state = view["state"] + (f" → {view['in_progress']} (in progress)" if view["in_progress"] else "")
    rows = [
        ("release", view["release"]),
        ("model", view["model"]),
        ("digest", view["digest"] or "-"),
        ("environment", view["environment"]),
        ("strategy", view["strategy"]),
        ("state", state),
        ("candidate colour", view["colour"]),
        ("weights", ", ".join(f"{c} {w}%" for c, w in sorted((view["weights"] or {}).items())) or "-"),
    ]
    runtime = view.get("runtime") or {}
    if view["live"]:
        serving = "" if runtime.get("serving") is not False else " (registry) — runtime NOT serving"
        rows.append(("live", f"{view['live']['version']} on {view['live']['colour']}{serving}"))
    if runtime.get("detail"):
        rows.append(("runtime", runtime["detail"]))
    if view["paused"]:
        rows.append(("paused", view["paused"]))
    for reason in view["reasons"]:
        rows.append(("reason", reason))
    console.print(table(f"release {view['service']}", ["field", "value"], rows))
    for a in view["analysis"]:
        if a.get("comparison"):
            c = a["comparison"]
            console.print(
                table(
                    "shadow comparison (same requests)",
                    ["measure", "candidate", "production"],
                    [
                        ("requests in the window", c.get("mirrored_requests"), c.get("production_requests")),
                        ("joined by request id", c.get("joined", "-"), c.get("joined", "-")),
                        ("agreement", "-" if c.get("agreement") is None else f"{c['agreement']:.2%}", ""),
                        (
                            "error rate",
                            f"{c['candidate_error_rate']:.2%}",
                            f"{c['production_error_rate']:.2%}",
                        ),
                        (
                            "p95 ms",
                            _ms(c.get("candidate_p95_seconds")),
                            _ms(c.get("production_p95_seconds")),
                        ),
                    ],
                )
            )
    if view["analysis"]:
        console.print(
            table(
                "analysis",
                ["name", "verdict", "requests", "error rate", "p95 ms", "why"],
                [
                    (
                        a["name"],
                        a["verdict"],
                        a["requests"],
                        f"{a['error_rate']:.2%}",
                        "-" if a["p95_seconds"] is None else f"{a['p95_seconds'] * 1000:.1f}",
                        "; ".join(a["reasons"]),
                    )
                    for a in view["analysis"]
                ],
            )
        )


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"


# The state machine's GREEN_* names mean "the candidate colour", which may well be blue.
_STEP_NAMES = {"GREEN_APPLIED": "candidate colour applied", "GREEN_READY": "candidate colour ready"}


def _progress(release_id: str, state: str, phase: str) -> None:
    if phase == "done":
        info(f"  {_STEP_NAMES.get(state, state.lower().replace('_', ' '))}")


_last_tick: dict[str, float] = {}


def _countdown(release_id: str, window: str, seconds_left: float) -> None:
    """A countdown for analysis windows: at the start, then every 5 s (a line each: fine in CI logs)."""
    import time

    key = f"{release_id}/{window}"
    now = time.monotonic()
    if now - _last_tick.get(key, -1e9) >= 5.0:
        _last_tick[key] = now
        info(f"  {window} analysis: {seconds_left:.0f} s of traffic left to measure")


def _hooks() -> engine.Hooks:
    return engine.Hooks(on_transition=_progress, on_window=_countdown)


@app.command()
def start(
    ref: Annotated[str, typer.Argument(help="NAME:VERSION of a registered model version.")],
    env: EnvOption = "uae-local",
    strategy: Annotated[str, typer.Option(help="blue-green, canary or shadow.")] = "blue-green",
    service: Annotated[str | None, typer.Option(help="Service name (default: the model name).")] = None,
    steps: Annotated[str, typer.Option(help="Canary weights, e.g. 10,25,50.")] = "10,25,50",
    pause: Annotated[float, typer.Option(help="Seconds at each canary step before its analysis.")] = 10.0,
    analysis_window: Annotated[
        float, typer.Option(help="Seconds of traffic analysed after the switch.")
    ] = 10.0,
    scale_down_delay: Annotated[
        float, typer.Option(help="Seconds the old colour stays up after DONE.")
    ] = 30.0,
    ready_timeout: Annotated[float, typer.Option(help="Seconds for the candidate to become ready.")] = 120.0,
    max_error_rate: Annotated[float, typer.Option(help="Analysis fails above this 5xx fraction.")] = 0.01,
    max_p95_ms: Annotated[float, typer.Option(help="Analysis fails above this p95 latency (ms).")] = 500.0,
    min_requests: Annotated[int, typer.Option(help="Fewer requests in a window: inconclusive (pause).")] = 20,
    pre_analysis_requests: Annotated[int, typer.Option(help="Synthetic requests before any traffic.")] = 50,
    smoke_latency_ms: Annotated[
        float, typer.Option(help="Latency bound of the smoke inference (ms).")
    ] = 1000.0,
    mirror_percent: Annotated[
        int, typer.Option(help="Shadow: percent of production requests copied to the candidate.")
    ] = 10,
    window: Annotated[float, typer.Option(help="Shadow: seconds of mirrored traffic compared.")] = 60.0,
    then: Annotated[
        str | None, typer.Option(help="Shadow: what follows a passed comparison (blue-green); default: stop.")
    ] = None,
    min_agreement: Annotated[
        float, typer.Option(help="Shadow: fraction of answers that must agree with production.")
    ] = 0.95,
    max_relative_difference: Annotated[
        float, typer.Option(help="Shadow, regressions: largest relative difference that still agrees.")
    ] = 0.01,
    compare_as: Annotated[
        str, typer.Option("--compare", help="Shadow: outputs are auto, classifier (argmax) or regression.")
    ] = "auto",
    max_latency_ratio: Annotated[
        float, typer.Option(help="Shadow: candidate p95 may be at most this times production's.")
    ] = 2.0,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Release NAME:VERSION to ENV: gates, candidate colour, checks, cutover, analysis.

    Example: mlctl release digits:2 --strategy shadow --mirror-percent 20 --window 300 --then blue-green
    """
    name, version = _parse_ref(ref)
    _known_environment(env)
    _authorize("release", f"{name}:{version}@{env}", env)
    from control_plane import registry

    registry.get_version(name, version)  # "not registered" (exit 6), never a gate refusal, nothing recorded
    if strategy not in STRATEGIES:
        raise MlctlError(f"unknown strategy {strategy!r}", hint=f"use --strategy {', '.join(STRATEGIES)}")
    cfg = ReleaseConfig(
        strategy=strategy,  # type: ignore[arg-type]
        ready_timeout=ready_timeout,
        smoke_latency_bound=smoke_latency_ms / 1000,
        pre_analysis_requests=pre_analysis_requests,
        analysis_window=analysis_window,
        canary_steps=_steps(steps),
        canary_pause=pause,
        scale_down_delay=scale_down_delay,
        thresholds=Thresholds(
            max_error_rate=max_error_rate, max_p95_seconds=max_p95_ms / 1000, min_requests=min_requests
        ),
        mirror_percent=mirror_percent,
        shadow_window=window,
        then=then,
        shadow=ShadowThresholds(
            min_agreement=min_agreement,
            max_relative_difference=max_relative_difference,
            output=compare_as,  # type: ignore[arg-type]
            max_latency_ratio=max_latency_ratio,
        ),
    )
    driver = engine.driver_for(env) if _env_ok(env) else None
    eng = engine.Engine(driver, hooks=_hooks()) if driver else None
    if eng is None:
        # The environment itself failed the residency gate: record the refusal, apply nothing.
        _refuse_environment(name, version, env)
        return
    rid = eng.start(model_name=name, version=version, env_name=env, config=cfg, service=service)
    info(f"release {rid}: {name}:{version} → {env} ({strategy})")
    _finish(eng.run(rid), output, driver)


def _known_environment(env: str) -> None:
    """A typo'd --env is an unknown environment (exit 6) naming those that exist, not a gate refusal."""
    from pathlib import Path

    from control_plane.settings import BLUEPRINTS_DIR

    path = Path(env)
    if path.suffix and path.exists():
        return
    if not path.suffix and (BLUEPRINTS_DIR / f"{env}.yaml").exists():
        return
    import difflib

    known = sorted(p.stem for p in BLUEPRINTS_DIR.glob("*.yaml"))
    close = difflib.get_close_matches(env, known, n=1)
    raise NotFound(
        f"unknown environment {env!r}" + (f" (did you mean {close[0]!r}?)" if close else ""),
        hint=f"environments: {', '.join(known)}; or pass a blueprint file path",
    )


def _env_ok(env: str) -> bool:
    from control_plane.release import gates

    try:
        gates.environment(env)
    except gates.GateRefused:
        return False
    return True


def _refuse_environment(name: str, version: str, env: str) -> None:
    from control_plane import audit
    from control_plane.release import gates

    try:
        gates.environment(env)
    except gates.GateRefused as exc:
        audit.record(
            action="release.refused",
            subject=f"model/{name}:{version}",
            decision="deny",
            reasons=[f"{exc.gate}: {r}" for r in exc.reasons],
            details={"env": env},
        )
        raise


def _service_driver(service: str) -> tuple[ReleaseRow, Any]:
    row = engine.active_release(service) or engine.latest_release(service)
    if row is None:
        raise NotFound(f"no release of {service} is recorded", hint="start one: mlctl release NAME:VERSION")
    return row, engine.driver_for(row.environment)


def _runtime(view: dict[str, Any], driver: Any) -> dict[str, Any]:
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


def _status_code(row: ReleaseRow, runtime: dict[str, Any]) -> int:
    if row.state == engine.REFUSED:
        return PolicyViolation.exit_code
    if row.state == engine.ROLLED_BACK:
        return EXIT_ROLLED_BACK
    if row.state not in engine.TERMINAL:
        return EXIT_PAUSED if row.paused else EXIT_IN_PROGRESS
    return EXIT_DEGRADED if runtime["serving"] is False else 0


def _status_view(service: str) -> tuple[ReleaseRow, dict[str, Any]]:
    row, driver = _service_driver(service)
    view = describe(row, driver)
    view["runtime"] = _runtime(view, driver)
    return row, view


@app.command()
def status(
    service: Annotated[str, typer.Argument(help="The service (default name: the model's).")],
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Refresh until the release ends (or pauses).")] = False,
    interval: Annotated[float, typer.Option(help="--watch: seconds between refreshes.")] = 2.0,
    timeout: Annotated[float, typer.Option(help="--watch: give up after this many seconds.")] = 1800.0,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Show the service's release in progress (or its latest): step, weights, analysis, reasons,
    and whether the runtime really serves the live version. The exit code is the state's:
    0 DONE and serving, 4 REFUSED, 10 ROLLED_BACK, 11 paused, 12 in progress, 13 runtime not serving.

    Example:  mlctl release status digits --watch
    """
    import time

    deadline = time.monotonic() + timeout
    while True:
        row, view = _status_view(service)
        code = _status_code(row, view["runtime"])
        done = code != EXIT_IN_PROGRESS or not watch or time.monotonic() > deadline
        if output is OutputFormat.json:
            if done:
                emit_json(view)
        elif watch and console.is_terminal:
            console.clear()
            _print(view)
        elif done or watch:
            _print(view) if done else info(f"{row.id}: {view['state']}"
                                           + (f" → {view['in_progress']}" if view["in_progress"] else ""))
        if done:
            break
        time.sleep(interval)
    if code:
        raise typer.Exit(code)


@app.command("list")
def list_(
    service: Annotated[str | None, typer.Option("--service", help="Only this service.")] = None,
    state: Annotated[list[str] | None, typer.Option(
        "--state", help="Only these states (repeatable): DONE, ROLLED_BACK, REFUSED, ..., or active, paused.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Only releases of NAME or NAME:VERSION.")] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="Only releases started by this actor.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Only newer than 30m, 6h, 7d or an ISO date.")] = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """List releases, newest first.

    Example:  mlctl release list --state active --since 7d
    """
    from control_plane.release.queries import list_releases

    rows = list_releases(service=service, states=state, model=model, actor=actor, since=since)
    if output is OutputFormat.json:
        emit_json(rows)
        return
    console.print(table("releases", ["release", "service", "model", "env", "strategy", "state", "by", "created"],
                        [(r["release"], r["service"], r["model"], r["environment"], r["strategy"],
                          r["state"] + (" (paused)" if r["paused"] and r["state"] not in engine.TERMINAL else ""),
                          r["created_by"], r["created_at"]) for r in rows]))


@app.command()
def history(
    service: Annotated[str, typer.Argument(help="The service.")],
    output: OutputOption = OutputFormat.table,
) -> None:
    """Every release of SERVICE, newest first, with what replaced what and why it ended.

    Example:  mlctl release history digits
    """
    from control_plane.release.queries import list_releases

    rows = list_releases(service=service)
    if not rows:
        raise NotFound(f"no release of {service} is recorded", hint="start one: mlctl release NAME:VERSION --env ENV")
    if output is OutputFormat.json:
        emit_json(rows)
        return
    console.print(table(f"history of {service}", ["release", "model", "replaced", "strategy", "state", "by",
                                                   "created", "why"],
                        [(r["release"], r["model"], r["previous_version"] or "-", r["strategy"], r["state"],
                          r["created_by"], r["created_at"], "; ".join(r["reasons"]) or r["paused"] or "")
                         for r in rows]))


@app.command()
def resume(service: str, output: OutputOption = OutputFormat.table) -> None:
    """Continue a release whose mlctl process died; converges to DONE or ROLLED_BACK."""
    _authorize("release.resume", f"service/{service}", _service_env(service))
    _row, driver = _service_driver(service)
    claimed = engine.Engine(driver).claim(service)
    info(f"resuming {claimed.id} at {claimed.state}" + (f" → {claimed.target}" if claimed.target else ""))
    _finish(
        engine.Engine(driver, hooks=_hooks()).run(claimed.id), output, driver
    )


@app.command()
def promote(service: str, output: OutputOption = OutputFormat.table) -> None:
    """Continue a paused release (inconclusive analysis) or skip the current wait."""
    _decide(service, "promote", output)


@app.command()
def abort(service: str, output: OutputOption = OutputFormat.table) -> None:
    """Stop the release in progress and roll back (traffic returns to the previous version)."""
    _decide(service, "abort", output)


def _decide(service: str, what: str, output: OutputFormat) -> None:
    _authorize(f"release.{what}", f"service/{service}", _service_env(service))
    row, driver = _service_driver(service)
    eng = engine.Engine(driver, hooks=_hooks())
    eng.request(service, what)
    try:
        claimed = eng.claim(service)
    except MlctlError:
        # Another live mlctl process drives it; it reads the request at its next check.
        info(f"{what} recorded for {row.id}; the mlctl process driving it will act on it")
        return
    _finish(eng.run(claimed.id), output, driver)


@app.command()
def rollback(service: str, output: OutputOption = OutputFormat.table) -> None:
    """Back to the previous version: abort a release in progress, or re-release the previous version (instant while its colour is still up, a redeploy otherwise)."""
    _authorize("release.rollback", f"service/{service}", _service_env(service))
    if engine.active_release(service) is not None:
        _decide(service, "abort", output)
        return
    lv = engine.live(service)
    if lv is None or not lv.previous_version or not lv.previous_release_id:
        raise NotFound(
            f"{service} has no previous version to roll back to", hint=f"see `mlctl release status {service}`"
        )
    from control_plane.store import session_scope

    with session_scope() as s:
        prev = s.get(ReleaseRow, lv.previous_release_id)
        if prev is None:
            raise NotFound(
                f"release {lv.previous_release_id} is not recorded", hint="release a version explicitly"
            )
        model_name, env_name, prev_cfg = prev.model_name, prev.environment, prev.config
    import json

    base = ReleaseConfig.from_dict(json.loads(prev_cfg))
    cfg = ReleaseConfig(
        strategy="rollback",
        ready_timeout=base.ready_timeout,
        smoke_latency_bound=base.smoke_latency_bound,
        scale_down_delay=base.scale_down_delay,
        thresholds=base.thresholds,
    )
    driver = engine.driver_for(env_name)
    instant = lv.previous_colour is not None and lv.previous_colour in driver.deployed(service)
    eng = engine.Engine(driver, hooks=_hooks())
    rid = eng.start(
        model_name=model_name, version=lv.previous_version, env_name=env_name, config=cfg, service=service
    )
    info(
        f"rollback {rid}: {service} → {model_name}:{lv.previous_version} "
        f"({'instant: still up on ' + lv.previous_colour if instant and lv.previous_colour else 'redeploy'})"
    )
    _finish(eng.run(rid), output, driver)
