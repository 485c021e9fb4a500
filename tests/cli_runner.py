"""One way for tests to run ``mlctl``: ``run_mlctl("infra", "drift", "-o", "json")``.

By default a real ``python -m control_plane`` process (the console script's code path: argument
parsing, error formatting, exit codes, no traceback), with wide columns so rich does not wrap the
names a test looks for. ``in_process=True`` calls the same entry point (``control_plane.cli.main``)
in this interpreter instead, for tests that run many commands and cannot pay a multi-second start
per call; everything else (the Result, ``check``, ``input``) is the same. Tests that need the process
itself (killing it mid-release, reading its output while it runs, an interactive login) start it
with ``start_mlctl``, the same command line.
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


def start_mlctl(*args: str, env: Mapping[str, str] | None = None, **popen: Any) -> subprocess.Popen[Any]:
    """Start ``mlctl ARGS`` as the process ``run_mlctl`` runs (same command line, directory and
    environment) and return it running, for a test that must hold it: kill it mid-release, read
    its output as it comes, talk to a server it starts. ``popen``: ``stdout=``, ``text=``, ..."""
    return subprocess.Popen(_ARGV + list(args), cwd=REPO, env=_environ(env), **popen)


def run_mlctl(
    *args: str,
    env: Mapping[str, str] | None = None,
    check: bool = False,
    in_process: bool = False,
    input: str | None = None,
    timeout: float = 600,
) -> Result:
    """Run ``mlctl ARGS``; ``env`` adds to (or overrides) this process's environment; ``input`` is
    its standard input (none: an empty one in-process, this process's own as a subprocess);
    ``check`` fails the test, showing both streams, when the exit code is not 0."""
    extra = {"COLUMNS": COLUMNS, **(env or {})}
    result = _in_process(args, extra, input) if in_process else _subprocess(args, extra, input, timeout)
    if check and result.returncode != 0:
        raise AssertionError(str(result))
    return result


_ARGV = [sys.executable, "-m", "control_plane"]


def _environ(extra: Mapping[str, str] | None) -> dict[str, str]:
    return {**os.environ, "COLUMNS": COLUMNS, **(extra or {})}


def _subprocess(args: tuple[str, ...], extra: Mapping[str, str], input: str | None, timeout: float) -> Result:
    proc = subprocess.run(
        _ARGV + list(args), cwd=REPO, env=_environ(extra), input=input,
        capture_output=True, text=True, timeout=timeout, check=False,
    )
    return Result(args, proc.returncode, proc.stdout, proc.stderr)


def _in_process(args: tuple[str, ...], extra: Mapping[str, str], input: str | None) -> Result:
    from control_plane.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    stdin, sys.stdin = sys.stdin, io.StringIO(input or "")  # a prompt reads this, not pytest's stdin
    code = 0
    try:
        # main() forgets the command's flags (--as, --blueprint) when it returns, as its process would
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main(list(args))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.stdin = stdin
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return Result(args, code, out.getvalue(), err.getvalue())
