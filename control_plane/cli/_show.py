"""What every thin command of the operations groups does after its service call: render the view,
tell its notes on stderr, and raise the failure it carries (exit code from the error type)."""

from __future__ import annotations

from typing import Any

from control_plane.output import OutputFormat, View, info, render


def show(view: View, output: OutputFormat | str) -> None:
    """``render`` the view; then its ``notes`` (stderr, either format); then its ``failure()``,
    if any, raised for ``cli.main`` to print (as JSON under ``-o json``) with its exit code."""
    render(view, output)
    for note in getattr(view, "notes", ()):
        info(note)
    failure: Any = getattr(view, "failure", None)
    error = failure() if callable(failure) else None
    if error is not None:
        raise error


def stack_progress(stack: str, message: str) -> None:
    """Progress of long infrastructure work, on stderr: ``STACK: message``."""
    info(f"[bold]{stack}[/]: {message}")
