"""``python -m tests.policy.mlctl_entry ARGS``: the real ``mlctl`` entry point with ``infra check``
registered the way the ``infra`` group registers it, so these tests run before that wiring lands
and keep running unchanged after it."""

from __future__ import annotations

import sys

import typer

from control_plane import cli
from control_plane.cli.infra_check import check


def _wire() -> None:
    for group in cli.app.registered_groups:
        if group.name == "infra" and group.typer_instance is not None:
            names = {c.name for c in group.typer_instance.registered_commands}
            if "check" not in names:
                group.typer_instance.command("check")(check)
            return
    infra = typer.Typer(help="infrastructure (test wiring)")
    infra.command("check")(check)
    cli.app.add_typer(infra, name="infra")


if __name__ == "__main__":
    _wire()
    cli.main(sys.argv[1:])
