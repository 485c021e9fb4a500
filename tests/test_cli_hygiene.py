"""Every command's --help has an example and no value-inviting metavar on flags; output through
control_plane.output does not wrap, truncate or substitute emoji when stdout is not a terminal."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import typer

from control_plane.cli import app
from tests.cli_runner import run_mlctl


def _commands() -> Iterator[tuple[str, object]]:
    root = typer.main.get_command(app)

    def walk(cmd: object, path: list[str]) -> Iterator[tuple[str, object]]:
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                yield from walk(sub, [*path, name])
        else:
            yield " ".join(path), cmd

    yield from walk(root, [])


COMMANDS = sorted(path for path, _ in _commands())


def test_there_are_commands_to_check() -> None:
    assert len(COMMANDS) > 30 and "release history" in COMMANDS and "sample" in COMMANDS


@pytest.mark.parametrize("path", COMMANDS)
def test_help_has_an_example_and_no_bool_metavar(path: str) -> None:
    result = run_mlctl(*path.split(), "--help", in_process=True)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Example" in output, f"`mlctl {path} --help` has no example"
    assert "<bool>" not in output


def test_piped_output_never_wraps_truncates_or_makes_emoji(capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    from control_plane.output import _console, table

    con = _console(sys.stdout)
    digest = "sha256:" + "ab" * 32
    con.print(f"NAME:V: {digest} " + "x" * 300)
    con.print(table("t", ["digest", "note"], [(digest, "y" * 200)]))
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "✌" not in out and "\x1b[" not in out and "…" not in out
    assert lines[0].startswith("NAME:V: " + digest) and lines[0].endswith("x" * 300)
    assert any(digest in line and "y" * 200 in line for line in lines)
