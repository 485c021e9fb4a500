"""Human (rich) and machine (JSON) output, chosen per command with ``--output``.

Hygiene rules every command gets by printing through this module:

- **No wrapping, no truncation, no emoji** when stdout is not a terminal: the consoles take an
  unbounded width there (a digest never breaks mid-hash in a CI log), rich's emoji codes are off
  everywhere (``NAME:V:`` must not become ``NAME✌``), and no ANSI codes are written.
- **No colour** with ``--no-color`` (root option) or ``NO_COLOR`` set (https://no-color.org).
- **JSON** (``emit_json``): sorted keys, timestamps as ISO-8601 UTC strings (``iso_utc``), and
  errors as ``{"error": {...}}`` on stderr (``emit_error_json``; ``cli.main`` does it for every
  ``MlctlError`` under ``--output json``). The schema of each view is in docs/cli.md.
- Progress and notes (``info``) go to stderr so stdout stays clean for pipes.

Print user-supplied text with ``escape()`` or ``markup=False``: rich reads ``[x]`` as markup.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import IO, Annotated, Any, Protocol

import typer
from rich.console import Console
from rich.table import Table

# Wide enough for any line we print; rich then never wraps or ellipsizes when not on a terminal.
_UNBOUNDED = 100_000


def _console(stream: IO[str]) -> Console:
    tty = bool(getattr(stream, "isatty", lambda: False)())
    no_color = bool(os.environ.get("NO_COLOR"))
    return Console(
        stderr=stream is sys.stderr,
        emoji=False,
        width=None if tty else _UNBOUNDED,
        soft_wrap=not tty,
        no_color=no_color,
        color_system=None if (no_color or not tty) else "auto",
        highlight=tty and not no_color,
    )


console = _console(sys.stdout)
err_console = _console(sys.stderr)


def disable_color() -> None:
    """``--no-color``: plain text on both consoles from now on.

    It changes these two consoles only and never sets ``NO_COLOR`` in ``os.environ``: that would
    outlive the command (an in-process caller, a test) and reach every child process, and none
    needs it: the children mlctl starts write to log files or pipes, and terraform gets
    ``-no-color`` on its command line. ``NO_COLOR`` set by the user is still honoured (``_console``)."""
    for c in (console, err_console):
        c.no_color = True
        c._color_system = None  # rich has no public setter; None means "write no ANSI codes"
        c.highlighter = None  # type: ignore[assignment]


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


OutputOption = Annotated[
    OutputFormat,
    typer.Option("--output", "-o", help="table for people, json for automation (stable keys, see docs/cli.md)."),
]


def iso_utc(value: float | int | datetime | str | None) -> str | None:
    """A timestamp as ISO-8601 UTC with a ``Z`` (epoch seconds, aware/naive datetimes, ISO strings)."""
    if value is None:
        return None
    if isinstance(value, int | float):
        dt = datetime.fromtimestamp(float(value), UTC)
    elif isinstance(value, datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=UTC)
    else:
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        dt = dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso_utc(value)
    return str(value)


def emit_json(payload: Any) -> None:
    """Write JSON to stdout with no rich markup, so pipes get parseable output."""
    sys.stdout.write(json.dumps(payload, indent=2, sort_keys=True, default=_default) + "\n")
    sys.stdout.flush()


def emit_error_json(*, message: str, hint: str | None, exit_code: int, kind: str) -> None:
    """An error under ``--output json``: one JSON object on stderr (stdout stays empty)."""
    payload = {"error": {"message": message, "hint": hint, "exit_code": exit_code, "kind": kind}}
    sys.stderr.write(json.dumps(payload, sort_keys=True) + "\n")
    sys.stderr.flush()


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    t = Table(title=title, title_justify="left")
    for col in columns:
        # overflow="fold" on a terminal keeps every character (a digest is never cut to "…")
        t.add_column(col, overflow="fold")
    for row in rows:
        t.add_row(*("" if v is None else str(v) for v in row))
    return t


def info(message: str) -> None:
    """Progress and notes go to stderr so that ``--output json`` stays clean on stdout."""
    err_console.print(message)


# --- one output path -----------------------------------------------------------------------------
#
# A command returns a view; ``render(view, output)`` writes it. A view knows its JSON (stable,
# documented keys: docs/cli.md) and the tables people read; nothing else in a command prints results.


class View(Protocol):
    def as_json(self) -> Any: ...

    def renderables(self) -> Iterable[Any]:
        """What a person sees (rich tables or text), in order."""
        ...


@dataclass(frozen=True)
class RecordView:
    """One object: a field/value table for people, the mapping itself for automation."""

    title: str
    data: Mapping[str, Any]
    fields_shown: Sequence[str] | None = None  # which keys the table shows (default: all, in order)

    def as_json(self) -> Any:
        return dict(self.data)

    def renderables(self) -> Iterable[Any]:
        keys = self.fields_shown or list(self.data)
        yield table(self.title, ["field", "value"], [(k, _cell(self.data.get(k))) for k in keys])


@dataclass(frozen=True)
class ListView:
    """Rows of objects: a table of ``columns`` for people, the list of mappings for automation."""

    title: str
    items: Sequence[Mapping[str, Any]]
    columns: Sequence[str]
    empty: str | None = None  # said (on stderr) instead of an empty table

    def as_json(self) -> Any:
        return [dict(i) for i in self.items]

    def renderables(self) -> Iterable[Any]:
        if not self.items and self.empty:
            info(self.empty)
            return
        yield table(self.title, self.columns, [[_cell(i.get(c)) for c in self.columns] for i in self.items])


def _cell(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return value


def render(view: View, output: OutputFormat | str = OutputFormat.table) -> None:
    """Write ``view``: JSON (sorted keys) on stdout for ``--output json``, else its tables."""
    if OutputFormat(output) is OutputFormat.json:
        emit_json(view.as_json())
        return
    for item in view.renderables():
        console.print(item)
