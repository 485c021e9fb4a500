"""One way for tests to run ``mlctl``: ``run_mlctl("infra", "drift", "-o", "json")``.

By default a real ``python -m control_plane`` process (the console script's code path: argument
parsing, error formatting, exit codes, no traceback), with wide columns so rich does not wrap the
names a test looks for. ``in_process=True`` calls the same entry point (``control_plane.cli.main``)
in this interpreter instead, for tests that run many commands and cannot pay a multi-second start
per call; everything else (the Result, ``check``) is the same.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
COLUMNS = "400"  # rich wraps at 80 columns otherwise, splitting file names and hints


@dataclass(frozen=True)
class Result:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """stdout as JSON (``-o json``), failing the test with both streams when it is not."""
        try:
            return json.loads(self.stdout)
        except ValueError:
            raise AssertionError(f"no JSON from {self}") from None

    def __str__(self) -> str:
        return (f"mlctl {' '.join(self.args)} (exit {self.returncode})\n--- stdout\n{self.stdout[-3000:]}"
                f"\n--- stderr\n{self.stderr[-3000:]}")


def run_mlctl(
    *args: str,
    env: Mapping[str, str] | None = None,
    check: bool = False,
    in_process: bool = False,
    timeout: float = 600,
) -> Result:
    """Run ``mlctl ARGS``; ``env`` adds to (or overrides) this process's environment; ``check``
    fails the test, showing both streams, when the exit code is not 0."""
    extra = {"COLUMNS": COLUMNS, **(env or {})}
    result = _in_process(args, extra) if in_process else _subprocess(args, extra, timeout)
    if check and result.returncode != 0:
        raise AssertionError(str(result))
    return result


def _subprocess(args: tuple[str, ...], extra: Mapping[str, str], timeout: float) -> Result:
    proc = subprocess.run(
        [sys.executable, "-m", "control_plane", *args], cwd=REPO, env={**os.environ, **extra},
        capture_output=True, text=True, timeout=timeout, check=False,
    )
    return Result(args, proc.returncode, proc.stdout, proc.stderr)


def _in_process(args: tuple[str, ...], extra: Mapping[str, str]) -> Result:
    from control_plane.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main(list(args))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return Result(args, code, out.getvalue(), err.getvalue())
