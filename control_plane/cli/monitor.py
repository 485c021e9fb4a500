"""``mlctl monitor``: drift detection, the metrics endpoint and the event log (verbs:
``services.monitoring``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from control_plane.cli._show import show
from control_plane.client import remote
from control_plane.errors import UsageError
from control_plane.output import OutputFormat, OutputOption, info
from control_plane.services import Context, monitoring
from control_plane.settings import current as settings

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
    thresholds = {"psi": psi, "ks_statistic": ks, "js_distance": js, "p_value": p_value,
                  "prediction_column": prediction_column}
    api = remote()
    if api is not None:  # files named here are uploaded; s3:// URIs and SERVICE's log are the server's
        view = api.monitor.drift(reference=reference, service=service, current=current, config=config,
                                 thresholds=thresholds, remediation=remediate, last=last, since=since,
                                 fail_on_drift=fail_on_drift)
    else:
        view = monitoring.drift(Context(), reference=reference, service=service, current=current, config=config,
                                thresholds=thresholds, remediation=remediate, last=last, since=since,
                                fail_on_drift=fail_on_drift, note=info)
    show(view, output)


@app.command("serve-metrics")
def serve_metrics(
    port: Annotated[int, typer.Option(help="Port to listen on (0: a free one).")] = 9464,
    host: Annotated[
        str, typer.Option(help="Address to bind; loopback by default (put a proxy in front).")
    ] = "127.0.0.1",
) -> None:
    """Serve Prometheus metrics of the control plane on http://HOST:PORT/metrics (foreground).

    Not through a server (MLCTL_SERVER): scrape the server's own /metrics (docs/server.md)."""
    served = settings().server
    if served:
        raise UsageError(
            "`mlctl monitor serve-metrics` serves this machine's metrics, never a server's: scrape the server instead",
            hint=f"scrape {served.rstrip('/')}/metrics (the API's requests, latency and refused tokens); the "
                 "metrics of its event log come from `mlctl monitor serve-metrics` on the server's host, without MLCTL_SERVER")
    server = monitoring.metrics_server(Context(), host, port)
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
    """Show the local event log ($MLCTL_HOME/events/events.jsonl), or the server's with MLCTL_SERVER."""
    api = remote()
    show(api.events(last=last, type_glob=type_) if api is not None
         else monitoring.events(Context(), last=last, type_glob=type_), output)


@app.command()
def replay(output: OutputOption = OutputFormat.table) -> None:
    """Re-deliver dead-lettered events to their sinks; what still fails stays in the dead-letter file.
    With MLCTL_SERVER: the server's dead-lettered events, to its sinks."""
    api = remote()
    show(api.monitor.replay() if api is not None else monitoring.replay(Context()), output)
