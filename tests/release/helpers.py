"""Shared helpers for the release tests: run mlctl in-process or as a real process."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner

from control_plane.cli import app
from control_plane.errors import MlctlError


def mlctl(*args: str) -> tuple[int, str, str]:
    """Run mlctl in this process; returns (exit code, stdout, stderr)."""
    result = CliRunner().invoke(app, list(args))
    exc = result.exception
    if isinstance(exc, MlctlError):  # what `main` prints for users: problem and fix, no traceback
        return exc.exit_code, result.stdout, f"{result.stderr}error: {exc.message}\n  fix: {exc.hint}\n"
    if exc and not isinstance(exc, SystemExit):
        raise exc
    return result.exit_code, result.stdout, result.stderr


def mlctl_json(*args: str) -> tuple[int, dict[str, Any]]:
    code, out, err = mlctl(*args, "--output", "json")
    try:
        return code, json.loads(out)
    except ValueError:
        raise AssertionError(f"no JSON from mlctl {' '.join(args)} (exit {code}): {out}\n{err}") from None


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
