"""What every benchmark shares: the ``--output table|json`` flag, timing one call, percentiles, and
printing the result (JSON with its stable keys for automation, or the lines for people)."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Iterable
from typing import Any


def add_output_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", choices=["table", "json"], default="table")


def per_call(fn: Callable[[], object], n: int) -> float:
    """Seconds per call of ``fn`` over ``n`` calls, after one warm-up call."""
    fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0..1) of ``values``; NaN when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def emit(result: Any, output: str, lines: Iterable[str], *, indent: int | None = 2) -> None:
    """Print ``result`` as JSON under ``--output json``, else the human-readable ``lines``."""
    if output == "json":
        print(json.dumps(result, indent=indent))
    else:
        for line in lines:
            print(line)
