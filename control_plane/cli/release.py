"""``mlctl release``: put a signed, approved model version into production, and take it out.

    mlctl release NAME:VERSION --env ENV --strategy blue-green|canary
    mlctl release NAME:VERSION --strategy shadow --mirror-percent 10 --window 300 [--then blue-green]
    mlctl release status|promote|abort|resume|rollback SERVICE

``mlctl release NAME:VERSION ...`` is short for ``mlctl release start NAME:VERSION ...``.
Exit codes: 0 DONE or SHADOW_DONE; 4 refused by a gate; 10 ROLLED_BACK; 11 paused for a person.

This module only parses flags and renders: the verbs (RBAC, gates, the engine, rollback) live in
``control_plane.services.release``.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from control_plane.cli._served_names import served_env
from control_plane.client import remote
from control_plane.errors import EXIT_IN_PROGRESS, MlctlError, UsageError
from control_plane.output import OutputFormat, OutputOption, console, info, render
from control_plane.release.analysis import Thresholds
from control_plane.release.config import STRATEGIES, ReleaseConfig
from control_plane.release.shadow import ShadowThresholds
from control_plane.services import Context
from control_plane.services import release as releases


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


def _finish(view: releases.ReleaseView, output: OutputFormat) -> None:
    """Show the release, then end as it ended: the gate's refusal, or the state's exit code."""
    if view.data is not None:
        render(view, output)
    if view.refusal is not None:
        raise view.refusal
    if view.note:
        info(view.note)
    if view.exit_code:
        raise typer.Exit(view.exit_code)


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


def _remote_progress(state: str) -> None:
    info(f"  {_STEP_NAMES.get(state, state.lower().replace('_', ' '))}")


def _hooks() -> releases.ReleaseHooks:
    return releases.ReleaseHooks(on_transition=_progress, on_window=_countdown, on_note=info)


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

    def config() -> ReleaseConfig:
        # Built by the service after its environment, permission and registration checks.
        if strategy not in STRATEGIES:
            raise MlctlError(f"unknown strategy {strategy!r}", hint=f"use --strategy {', '.join(STRATEGIES)}")
        return ReleaseConfig(
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

    api = remote()
    if api is not None:  # MLCTL_SERVER: the server records, checks and drives it; we follow it
        view = api.release_start(f"{name}:{version}", served_env(env), dataclasses.asdict(config()), service,
                                 on_state=_remote_progress)
    else:
        view = releases.start(Context(), name, version, env, config, service=service, hooks=_hooks())
    _finish(view, output)


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

    ctx, api = Context(), remote()
    deadline = time.monotonic() + timeout
    while True:
        view = api.release_status(service) if api is not None else releases.status(ctx, service)
        data = view.data or {}
        code = view.exit_code
        done = code != EXIT_IN_PROGRESS or not watch or time.monotonic() > deadline
        if output is OutputFormat.json:
            if done:
                render(view, output)
        elif watch and console.is_terminal:
            console.clear()
            render(view, output)
        elif done:
            render(view, output)
        elif watch:
            info(f"{data['release']}: {data['state']}" + (f" → {data['in_progress']}" if data["in_progress"] else ""))
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
    api = remote()
    if api is not None:
        render(api.release_list(service=service, state=state, model=model, actor=actor, since=since), output)
        return
    render(releases.list_releases(Context(), service=service, states=state, model=model, actor=actor, since=since),
           output)


@app.command()
def history(
    service: Annotated[str, typer.Argument(help="The service.")],
    output: OutputOption = OutputFormat.table,
) -> None:
    """Every release of SERVICE, newest first, with what replaced what and why it ended.

    Example:  mlctl release history digits
    """
    api = remote()
    render(api.release_history(service) if api is not None else releases.history(Context(), service), output)


@app.command()
def resume(service: str, output: OutputOption = OutputFormat.table) -> None:
    """Continue a release whose mlctl process died; converges to DONE or ROLLED_BACK."""
    api = remote()
    _finish(api.release_verb(service, "resume", on_state=_remote_progress) if api is not None
            else releases.resume(Context(), service, hooks=_hooks()), output)


@app.command()
def promote(service: str, output: OutputOption = OutputFormat.table) -> None:
    """Continue a paused release (inconclusive analysis) or skip the current wait."""
    api = remote()
    _finish(api.release_verb(service, "promote", on_state=_remote_progress) if api is not None
            else releases.promote(Context(), service, hooks=_hooks()), output)


@app.command()
def abort(service: str, output: OutputOption = OutputFormat.table) -> None:
    """Stop the release in progress and roll back (traffic returns to the previous version)."""
    api = remote()
    _finish(api.release_verb(service, "abort", on_state=_remote_progress) if api is not None
            else releases.abort(Context(), service, hooks=_hooks()), output)


@app.command()
def rollback(service: str, output: OutputOption = OutputFormat.table) -> None:
    """Back to the previous version: abort a release in progress, or re-release the previous version (instant while its colour is still up, a redeploy otherwise)."""
    api = remote()
    _finish(api.release_verb(service, "rollback", on_state=_remote_progress) if api is not None
            else releases.rollback(Context(), service, hooks=_hooks()), output)
