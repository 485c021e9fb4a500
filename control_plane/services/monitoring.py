"""Monitoring verbs: drift detection with remediation, the event log, dead-letter replay and the
Prometheus metrics endpoint.

``drift`` compares and records (the check is audited and emitted by ``monitor.remediation``); when
its remediation changes something downstream (``retrain`` emits ``retrain.required`` for pipelines
to act on, ``rollback`` rolls the service back) it is authorized as ``monitor.drift``
(``policies/rbac.rego``: ml-engineer); the rollback itself is authorized again as
``release.rollback`` by the release service. ``none`` and ``alert`` only report, so anyone may run
them (the README tour's auditor-free drift check).

Import cost: the drift statistics pull in pandas, numpy and scipy (~1 s); they are imported inside
the verbs so that every other ``mlctl`` command starts without them.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from control_plane.errors import DriftDetected, MlctlError
from control_plane.events import TYPE_PREFIX, read_event_log
from control_plane.monitor.production import service_version
from control_plane.output import info, table
from control_plane.release.repository import live
from control_plane.services import release as releases
from control_plane.services.context import Context

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from control_plane.monitor.drift import DriftReport

__all__ = ["DriftCheckView", "EventsView", "ReplayView", "check_drift_inputs", "drift", "events", "metrics_server", "replay"]

Note = Callable[[str], None]
CHANGING_REMEDIATIONS = ("retrain", "rollback")


def _quiet(message: str) -> None:
    return None


@dataclass(frozen=True)
class DriftCheckView:
    report: DriftReport
    reference: str
    current: str
    service: str | None
    model: str | None
    version: str | None
    remediation: str
    actions: Sequence[dict[str, Any]]
    fail_on_drift: bool = False

    def as_json(self) -> Any:
        return {**self.report.to_dict(), "service": self.service, "model": self.model, "version": self.version,
                "remediation": self.remediation, "actions": list(self.actions)}

    def renderables(self) -> Iterable[Any]:
        report = self.report
        rows = []
        for f in report.features:
            s = f.scores
            if f.kind == "numeric":
                score = f"PSI {s.get('psi', float('nan')):.3f}  KS {s.get('ks_statistic', float('nan')):.3f}"
            else:
                score = f"JS {s['js_distance']:.3f}  chi2 p {s['chi2_p_value']:.2g}"
            name = f"{f.name} (prediction)" if f.is_prediction else f.name
            rows.append((name, f.kind, "DRIFT" if f.drifted else "ok", score, "; ".join(f.reasons)))
        yield table(f"Drift: {self.current} vs {self.reference} ({report.n_current} vs {report.n_reference} rows)",
                    ["feature", "kind", "status", "scores", "why"], rows)
        for skip in report.skipped:
            info(f"skipped {skip['feature']}: {skip['reason']}")
        for change in report.schema:
            yield f"[bold red]schema drift[/]: {escape(change['feature'])}: {escape(change['reason'])}"
        yield (
            f"[bold red]drift in {len(report.drifted_features) + len(report.schema)} feature(s)[/]"
            + (" and in predictions" if (report.prediction and report.prediction.drifted) else "")
            if report.drift_detected
            else "[green]no drift[/]"
        )
        for a in self.actions:
            yield f"remediation: {a['action']} -> {'ok' if a.get('ok') else a.get('error', 'not done')}"

    def failure(self) -> MlctlError | None:
        report = self.report
        if not (self.fail_on_drift and report.drift_detected):
            return None
        names = [f.name for f in report.features if f.drifted] + [
            f"{c['feature']} (schema: {c['change']})" for c in report.schema]
        return DriftDetected(f"drift found in {', '.join(names)}",
                             hint="investigate the drifted features; retrain from fresh data or roll back")


def check_drift_inputs(reference: str | None, service: str | None, current: str | None) -> str:
    """The reference table, when the inputs make a comparison (a front end checks them before it
    sends any data: ``mlctl --server`` before an upload)."""
    if reference is None:
        raise MlctlError("--reference is required",
                         hint="give the training/reference table: --reference data.parquet", exit_code=2)
    if (service is None) == (current is None):
        raise MlctlError(
            "give either SERVICE or --current FILE (exactly one)",
            hint="mlctl monitor drift --reference ref.csv --current cur.csv, or "
            "mlctl monitor drift my-service --reference ref.csv",
            exit_code=2,
        )
    return reference


def drift(ctx: Context, *, reference: str | None, service: str | None = None, current: str | None = None,
          config: Path | None = None, thresholds: dict[str, Any] | None = None, remediation: str | None = None,
          last: int | None = None, since: str | None = None, fail_on_drift: bool = False,
          note: Note = _quiet, reference_name: str | None = None, current_name: str | None = None
          ) -> DriftCheckView:
    """Compare current data (a file, or ``service``'s live requests) with reference data, per
    feature; audit, emit and remediate as configured. ``thresholds``: psi, ks_statistic,
    js_distance, p_value, prediction_column overrides of the config. ``reference_name`` /
    ``current_name``: what the report, audit entry and events call the tables when ``reference`` /
    ``current`` are copies (the server's unpacked upload of the client's files)."""
    from control_plane.monitor import drift as drift_mod  # lazy: scipy (~0.5 s), one verb; CLI start-up
    from control_plane.monitor import (
        remediation as remediate,  # lazy: scipy (via monitor.drift), one verb; CLI start-up
    )
    from control_plane.monitor.datasets import read_table  # lazy: one verb's code, kept off CLI start-up

    reference = check_drift_inputs(reference, service, current)
    cfg = drift_mod.load_config(config, **(thresholds or {}), remediation=remediation)
    reference_name = reference_name or reference
    if cfg.remediation in CHANGING_REMEDIATIONS:
        ctx.authorize("monitor.drift", service or str(current_name or current))
    ref_frame = read_table(reference)
    model = version = None
    if service is not None:
        from control_plane.monitor.request_log import (
            read_requests,  # lazy: one verb's code, kept off CLI start-up
        )

        window = read_requests(service, last=last, since=since)
        if window.bad_lines:
            note(f"skipped {window.bad_lines} unreadable line(s) of {window.path}")
        cur_frame, current_name = window.frame, f"service:{service}"
        model, version = window.model, window.version
        if model is None or version is None:
            live = service_version(service)  # the log does not say: ask the release engine
            if live is not None:
                model, version = live.name, live.version
    else:
        assert current is not None
        cur_frame, current_name = read_table(current), current_name or current
    report = drift_mod.compare(ref_frame, cur_frame, cfg, reference_name=reference_name, current_name=current_name)
    with ctx.acting():
        actions = remediate.act(report, source=current_name, remediation=cfg.remediation, service=service,
                                model=model, version=version, rollback=lambda svc: _rollback(ctx, svc))
    return DriftCheckView(report, reference_name, current_name, service, model, version, cfg.remediation, actions,
                          fail_on_drift)


@dataclass(frozen=True)
class EventsView:
    events: Sequence[dict[str, Any]]
    prefix: str

    def as_json(self) -> Any:
        return list(self.events)

    def renderables(self) -> Iterable[Any]:
        yield table("Events", ["time", "type", "subject", "id"],
                    [(e.get("time"), str(e.get("type", "")).removeprefix(self.prefix), e.get("subject"), e.get("id"))
                     for e in self.events])


def events(ctx: Context, *, last: int = 20, type_glob: str | None = None) -> EventsView:
    """The newest ``last`` events of the local event log (all with ``last`` <= 0), by type glob."""
    evs = read_event_log()
    if type_glob:
        evs = [e for e in evs if fnmatch.fnmatchcase(str(e.get("type", "")).removeprefix(TYPE_PREFIX), type_glob)]
    return EventsView(evs[-last:] if last > 0 else evs, TYPE_PREFIX)


@dataclass(frozen=True)
class ReplayView:
    delivered: int
    still_failing: int
    unknown_sink: int

    def as_json(self) -> Any:
        return {"delivered": self.delivered, "still_failing": self.still_failing, "unknown_sink": self.unknown_sink}

    def renderables(self) -> Iterable[Any]:
        yield (f"delivered {self.delivered}, still failing {self.still_failing}, "
               f"sink no longer configured {self.unknown_sink}")


def replay(ctx: Context) -> ReplayView:
    """Re-deliver dead-lettered events to their sinks; what still fails stays dead-lettered."""
    from control_plane.events.replay import (
        replay as do_replay,  # lazy: one verb's code, kept off CLI start-up
    )

    res = do_replay()
    return ReplayView(res.delivered, res.still_failing, res.unknown_sink)


def metrics_server(ctx: Context, host: str, port: int) -> WSGIServer:
    """A bound (not yet serving) Prometheus metrics server; the front end runs it in the foreground."""
    from control_plane.monitor.exporter import (
        make_metrics_server,  # lazy: prometheus_client, one verb; CLI start-up
    )

    try:
        return make_metrics_server(host, port)
    except OSError as exc:
        raise MlctlError(f"cannot listen on {host}:{port}: {exc.strerror}",
                         hint="pick another --port (or --port 0 for a free one)", exit_code=3) from None


def _rollback(ctx: Context, service: str) -> dict[str, Any]:
    """Drift remediation's rollback: the release service's ``rollback`` (the same verb as ``mlctl
    release rollback``, with its RBAC and audit) as the acting identity, summarised as an action."""
    try:
        view = releases.rollback(ctx, service)
    except MlctlError as exc:
        return {"action": "rollback", "ok": False, "error": exc.message}
    if view.refusal is not None:
        return {"action": "rollback", "ok": False, "error": view.refusal.message}
    if view.exit_code:  # the rollback release itself rolled back or paused
        return {"action": "rollback", "ok": False, "error": f"the rollback release did not finish (exit {view.exit_code})"}

    row = live(service)
    return {"action": "rollback", "ok": True, "live_version": None if row is None else row.live_version}
