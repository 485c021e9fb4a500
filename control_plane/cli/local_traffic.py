"""``mlctl local traffic SERVICE``: send users' requests through the local gateway.

A release's post-promotion analysis judges real traffic; on a laptop there is none, so a first
release pauses as inconclusive. This sends one V2 inference request per row of a CSV (columns
``input_0`` .. ``input_N``, as ``mlctl sample`` writes; other columns such as ``prediction`` are
ignored), paced, for a bounded time: the analysis then has requests to judge and the service's
request log has rows for ``mlctl monitor drift SERVICE``. Loopback only. The verb is
``services.operations.traffic``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from control_plane.cli._show import show
from control_plane.client import remote
from control_plane.output import OutputFormat, OutputOption, info
from control_plane.services import Context, operations


def traffic(
    service: Annotated[str, typer.Argument(help="The released service, e.g. digits.")],
    csv: Annotated[Path, typer.Option("--csv", help="Rows to send, one request each (cycled).")],
    seconds: Annotated[float, typer.Option("--seconds", help="How long to send.")] = 30.0,
    rate: Annotated[float, typer.Option("--rate", help="Requests per second.")] = 20.0,
    tensor: Annotated[str, typer.Option("--tensor", help="Name of the model's input tensor.")] = "input",
    output: OutputOption = OutputFormat.table,
) -> None:
    """Send paced V2 inference requests to SERVICE through the local gateway, one CSV row each.

    With MLCTL_SERVER: the rows are read here and the server sends them through its gateway, for
    at most 120 s at 50 requests/s (one run at a time); the answer comes when the run ends.

    Example (in the background while a release analyses traffic):

        mlctl local traffic digits --csv tour/today.csv --seconds 60 &
    """
    api = remote()
    if api is not None:
        info(f"the server sends {rate:g} requests/s to {service} through its gateway for {seconds:g}s …")
        show(api.local.traffic(service, csv=csv, seconds=seconds, rate=rate, tensor=tensor), output)
        return
    view = operations.traffic(Context(), service, csv=csv, seconds=seconds, rate=rate, tensor=tensor, note=info)
    show(view, output)
