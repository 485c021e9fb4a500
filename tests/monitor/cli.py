"""Run ``mlctl`` in-process through its real entry point (``control_plane.cli.main``): the same
argument parsing, error formatting and exit codes as the console script, without paying a
multi-second interpreter start per call. One test per command still runs the real subprocess."""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def run_mlctl(*args: str) -> Result:
    from control_plane.cli import main

    out, err = io.StringIO(), io.StringIO()
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "250"  # rich wraps at 80 columns otherwise, splitting messages
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main(list(args))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old
    return Result(code, out.getvalue(), err.getvalue())


def validate_command() -> list[str]:
    """The argv prefix for the validation gate: ``model validate`` once the lead has wired it into
    the ``model`` group; until then the same function is mounted as ``model-validate`` on the root."""
    from control_plane.cli import app
    from control_plane.cli.model_validate import validate

    for group in app.registered_groups:
        if group.name == "model" and group.typer_instance is not None:
            names = {
                c.name or (c.callback.__name__ if c.callback else "")
                for c in group.typer_instance.registered_commands
            }
            if "validate" in names:
                return ["model", "validate"]
    if not any(c.name == "model-validate" for c in app.registered_commands):
        app.command("model-validate")(validate)
    return ["model-validate"]
