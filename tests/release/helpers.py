"""Shared helpers for the release tests: the ``mlctl`` calls in the shapes these tests unpack, run
in-process by ``tests.cli_runner.run_mlctl`` (the one way tests run mlctl), and the fast timings."""

from __future__ import annotations

from typing import Any

from tests.cli_runner import run_mlctl


def mlctl(*args: str) -> tuple[int, str, str]:
    """``mlctl ARGS`` in this process; (exit code, stdout, stderr)."""
    result = run_mlctl(*args, in_process=True)
    return result.returncode, result.stdout, result.stderr


def mlctl_json(*args: str) -> tuple[int, dict[str, Any]]:
    """``mlctl ARGS --output json`` in this process; (exit code, the JSON document)."""
    result = run_mlctl(*args, "--output", "json", in_process=True)
    return result.returncode, result.json()


FAST = [
    "--analysis-window",
    "1",
    "--scale-down-delay",
    "60",
    "--min-requests",
    "0",
    "--pre-analysis-requests",
    "20",
]
