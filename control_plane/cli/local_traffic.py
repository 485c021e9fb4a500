"""``mlctl local traffic SERVICE``: send users' requests through the local gateway.

A release's post-promotion analysis judges real traffic; on a laptop there is none, so a first
release pauses as inconclusive. This sends one V2 inference request per row of a CSV (columns
``input_0`` .. ``input_N``, as ``mlctl sample`` writes; other columns such as ``prediction`` are
ignored), paced, for a bounded time: the analysis then has requests to judge and the service's
request log has rows for ``mlctl monitor drift SERVICE``. Loopback only.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from control_plane.errors import NotFound, UsageError
from control_plane.output import OutputFormat, OutputOption, console, emit_json, info


def _rows(csv: Path, tensor: str) -> list[list[float]]:
    import pandas as pd

    try:
        frame = pd.read_csv(csv)
    except FileNotFoundError:
        raise NotFound(f"--csv {csv}: no such file", hint="e.g. mlctl sample ./tour, then --csv tour/today.csv") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"--csv {csv}: cannot read it as CSV ({exc})", hint="pass a CSV with a header row") from None
    cols = [c for c in frame.columns if str(c).startswith(f"{tensor}_")]
    if not cols:
        raise UsageError(f"--csv {csv}: no {tensor}_<n> columns",
                         hint=f"the model's input tensor is {tensor!r}: name the columns {tensor}_0, {tensor}_1, ...")
    cols.sort(key=lambda c: int(str(c).rsplit("_", 1)[1]))
    return frame[cols].astype(float).values.tolist()


def traffic(
    service: Annotated[str, typer.Argument(help="The released service, e.g. digits.")],
    csv: Annotated[Path, typer.Option("--csv", help="Rows to send, one request each (cycled).")],
    seconds: Annotated[float, typer.Option("--seconds", help="How long to send.")] = 30.0,
    rate: Annotated[float, typer.Option("--rate", help="Requests per second.")] = 20.0,
    tensor: Annotated[str, typer.Option("--tensor", help="Name of the model's input tensor.")] = "input",
    output: OutputOption = OutputFormat.table,
) -> None:
    """Send paced V2 inference requests to SERVICE through the local gateway, one CSV row each.

    Example (in the background while a release analyses traffic):

        mlctl local traffic digits --csv tour/today.csv --seconds 60 &
    """
    import httpx

    from control_plane.drivers import gateway

    if seconds <= 0 or rate <= 0:
        raise UsageError("--seconds and --rate must be positive", hint="e.g. --seconds 30 --rate 20")
    gw = gateway.status()
    if not gw.running:
        raise NotFound("the local gateway is not running", hint="start it: mlctl local up")
    rows = _rows(csv, tensor)
    url = f"{gw.url}/v2/models/{service}/infer"
    sent = ok = 0
    statuses: dict[str, int] = {}
    started = time.monotonic()
    interval = 1.0 / rate
    info(f"sending {rate:g} requests/s to {url} for {seconds:g}s")
    from control_plane.local import ca

    # The gateway speaks TLS with the local CA's certificate: verify it, never verify=False.
    with httpx.Client(trust_env=False, timeout=10, verify=ca.httpx_verify(url)) as client:
        while (now := time.monotonic()) - started < seconds:
            row = rows[sent % len(rows)]
            body = {"inputs": [{"name": tensor, "shape": [1, len(row)], "datatype": "FP32", "data": row}]}
            try:
                code = str(client.post(url, json=body).status_code)
            except httpx.HTTPError as exc:
                code = type(exc).__name__
            sent += 1
            ok += code == "200"
            statuses[code] = statuses.get(code, 0) + 1
            pause = started + sent * interval - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            del now
    view = {"service": service, "url": url, "sent": sent, "ok": ok, "statuses": statuses,
            "seconds": round(time.monotonic() - started, 3)}
    if output is OutputFormat.json:
        emit_json(view)
        return
    console.print(f"sent {sent} requests to {service}: {ok} ok"
                  + ("" if ok == sent else f" ({', '.join(f'{k}: {v}' for k, v in sorted(statuses.items()))})"),
                  highlight=False, markup=False)
