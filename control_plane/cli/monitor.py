"""``mlctl monitor``: drift detection, the metrics endpoint and the event log."""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from control_plane.errors import DriftDetected, MlctlError
from control_plane.output import OutputFormat, OutputOption, console, emit_json, info, table

app = typer.Typer(
    help="Drift detection with remediation, Prometheus metrics and lifecycle events.", no_args_is_help=True
)


@app.command()
def drift(
    service: Annotated[
        str | None, typer.Argument(help="Deployed service whose request log is the current data.")
    ] = None,
    reference: Annotated[
        str | None,
        typer.Option(
            "--reference", "-r", help="Reference table: CSV, Parquet or JSONL; a path or s3://bucket/key."
        ),
    ] = None,
    current: Annotated[
        str | None, typer.Option("--current", "-c", help="Current table (instead of SERVICE).")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Drift config YAML: per-feature thresholds, types, prediction column, remediation.",
        ),
    ] = None,
    psi: Annotated[
        float | None, typer.Option(help="PSI threshold for numeric features (default 0.2).")
    ] = None,
    ks: Annotated[float | None, typer.Option("--ks", help="KS-statistic threshold (default 0.1).")] = None,
    js: Annotated[
        float | None, typer.Option("--js", help="Jensen-Shannon distance threshold (default 0.1).")
    ] = None,
    p_value: Annotated[
        float | None,
        typer.Option(
            "--p-value", help="Family-wise significance (default 0.01, Bonferroni-split over features)."
        ),
    ] = None,
    prediction_column: Annotated[
        str | None, typer.Option(help="Column holding predictions (default 'prediction').")
    ] = None,
    remediate: Annotated[
        str | None,
        typer.Option(help="none | alert | retrain | rollback (default: the config's, else alert)."),
    ] = None,
    last: Annotated[int | None, typer.Option(help="SERVICE: only the last N requests.")] = None,
    since: Annotated[
        str | None, typer.Option(help="SERVICE: only requests newer than this (30m, 6h, 7d).")
    ] = None,
    fail_on_drift: Annotated[
        bool, typer.Option("--fail-on-drift", help="Exit 5 when drift is found.")
    ] = False,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Compare current data (a file, or SERVICE's live requests) with reference data, per feature."""
    from control_plane.monitor import drift as drift_mod
    from control_plane.monitor import remediation
    from control_plane.monitor.datasets import read_table

    if reference is None:
        raise MlctlError(
            "--reference is required",
            hint="give the training/reference table: --reference data.parquet",
            exit_code=2,
        )
    if (service is None) == (current is None):
        raise MlctlError(
            "give either SERVICE or --current FILE (exactly one)",
            hint="mlctl monitor drift --reference ref.csv --current cur.csv, or "
            "mlctl monitor drift my-service --reference ref.csv",
            exit_code=2,
        )
    cfg = drift_mod.load_config(
        config,
        psi=psi,
        ks_statistic=ks,
        js_distance=js,
        p_value=p_value,
        prediction_column=prediction_column,
        remediation=remediate,
    )
    ref_frame = read_table(reference)
    model = version = None
    if service is not None:
        from control_plane.monitor.request_log import read_requests

        window = read_requests(service, last=last, since=since)
        if window.bad_lines:
            info(f"skipped {window.bad_lines} unreadable line(s) of {window.path}")
        cur_frame, current_name = window.frame, f"service:{service}"
        model, version = window.model, window.version
        if model is None or version is None:
            from control_plane.monitor.production import service_version

            live = service_version(service)  # the log does not say: ask the release engine
            if live is not None:
                model, version = live.name, live.version
    else:
        assert current is not None
        cur_frame, current_name = read_table(current), current
    report = drift_mod.compare(ref_frame, cur_frame, cfg, reference_name=reference, current_name=current_name)
    actions = remediation.act(
        report,
        source=current_name,
        remediation=cfg.remediation,
        service=service,
        model=model,
        version=version,
    )
    payload = {
        **report.to_dict(),
        "service": service,
        "model": model,
        "version": version,
        "remediation": cfg.remediation,
        "actions": actions,
    }
    if output is OutputFormat.json:
        emit_json(payload)
    else:
        rows = []
        for f in report.features:
            s = f.scores
            if f.kind == "numeric":
                score = f"PSI {s.get('psi', float('nan')):.3f}  KS {s.get('ks_statistic', float('nan')):.3f}"
            else:
                score = f"JS {s['js_distance']:.3f}  chi2 p {s['chi2_p_value']:.2g}"
            name = f"{f.name} (prediction)" if f.is_prediction else f.name
            rows.append((name, f.kind, "DRIFT" if f.drifted else "ok", score, "; ".join(f.reasons)))
        console.print(
            table(
                f"Drift: {current_name} vs {reference} ({report.n_current} vs {report.n_reference} rows)",
                ["feature", "kind", "status", "scores", "why"],
                rows,
            )
        )
        for skip in report.skipped:
            info(f"skipped {skip['feature']}: {skip['reason']}")
        for change in report.schema:
            console.print(f"[bold red]schema drift[/]: {escape(change['feature'])}: {escape(change['reason'])}")
        verdict = (
            f"[bold red]drift in {len(report.drifted_features) + len(report.schema)} feature(s)[/]"
            + (" and in predictions" if (report.prediction and report.prediction.drifted) else "")
            if report.drift_detected
            else "[green]no drift[/]"
        )
        console.print(verdict)
        for a in actions:
            console.print(
                f"remediation: {a['action']} -> {'ok' if a.get('ok') else a.get('error', 'not done')}"
            )
    if fail_on_drift and report.drift_detected:
        names = [f.name for f in report.features if f.drifted] + [
            f"{c['feature']} (schema: {c['change']})" for c in report.schema]
        raise DriftDetected(
            f"drift found in {', '.join(names)}",
            hint="investigate the drifted features; retrain from fresh data or roll back",
        )


@app.command("serve-metrics")
def serve_metrics(
    port: Annotated[int, typer.Option(help="Port to listen on (0: a free one).")] = 9464,
    host: Annotated[
        str, typer.Option(help="Address to bind; loopback by default (put a proxy in front).")
    ] = "127.0.0.1",
) -> None:
    """Serve Prometheus metrics of the control plane on http://HOST:PORT/metrics (foreground)."""
    from control_plane.monitor.exporter import make_metrics_server

    try:
        server = make_metrics_server(host, port)
    except OSError as exc:
        raise MlctlError(
            f"cannot listen on {host}:{port}: {exc.strerror}",
            hint="pick another --port (or --port 0 for a free one)",
            exit_code=3,
        ) from None
    info(f"serving metrics on http://{host}:{server.server_port}/metrics (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@app.command()
def events(
    last: Annotated[int, typer.Option(help="How many of the newest events to show.")] = 20,
    type_: Annotated[
        str | None, typer.Option("--type", help="Filter by type glob, e.g. 'release.*'.")
    ] = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Show the local event log ($MLCTL_HOME/events/events.jsonl)."""
    from control_plane.events import TYPE_PREFIX, read_event_log

    evs = read_event_log()
    if type_:
        evs = [e for e in evs if fnmatch.fnmatchcase(str(e.get("type", "")).removeprefix(TYPE_PREFIX), type_)]
    evs = evs[-last:] if last > 0 else evs
    if output is OutputFormat.json:
        emit_json(evs)
        return
    console.print(
        table(
            "Events",
            ["time", "type", "subject", "id"],
            [
                (
                    e.get("time"),
                    str(e.get("type", "")).removeprefix(TYPE_PREFIX),
                    e.get("subject"),
                    e.get("id"),
                )
                for e in evs
            ],
        )
    )


@app.command()
def replay(output: OutputOption = OutputFormat.table) -> None:
    """Re-deliver dead-lettered events to their sinks; what still fails stays in the dead-letter file."""
    from control_plane.events.replay import replay as do_replay

    res = do_replay()
    if output is OutputFormat.json:
        emit_json(
            {"delivered": res.delivered, "still_failing": res.still_failing, "unknown_sink": res.unknown_sink}
        )
    else:
        console.print(
            f"delivered {res.delivered}, still failing {res.still_failing}, "
            f"sink no longer configured {res.unknown_sink}"
        )
