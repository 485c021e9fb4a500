"""``mlctl infra check``: the policy gate over a blueprint's synthesized stacks.

``check`` is a plain typer command function; the ``infra`` group registers it as ``check``.
The verb is ``control_plane.services.infra.check``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from control_plane.cli._infra_blueprint import local_blueprint, served_blueprint
from control_plane.cli._show import show
from control_plane.client import remote
from control_plane.errors import UsageError
from control_plane.output import OutputFormat, OutputOption, View, info
from control_plane.policy.infra_gate import SKIPS_FILE
from control_plane.services import Context
from control_plane.services import infra as service


def check(
    blueprint: Annotated[
        Path | None,
        typer.Option("--blueprint", "-b", help="Blueprint YAML to synthesize and check, or a blueprint's name "
                     "(default blueprints/uae-local.yaml). With MLCTL_SERVER: a blueprint the server has, by "
                     "name (default: the server's); the server synthesizes and checks it with its skip file."),
    ] = None,
    stacks_dir: Annotated[
        Path | None,
        typer.Option(
            "--stacks-dir",
            help="Check an existing synthesis (a cdktf.out folder) instead of synthesizing --blueprint.",
        ),
    ] = None,
    skips: Annotated[
        Path,
        typer.Option("--skips", help="Justified findings (id, resource, reason)."),
    ] = SKIPS_FILE,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Run checkov and the Rego guardrails (residency, encryption, no public endpoints, no open
    ingress) over every stack; fail on any finding not justified in the skip file."""
    api = remote()
    if api is not None:  # the server checks its own synthesis of its blueprint, against its skip file
        for given, flag in ((stacks_dir, "--stacks-dir"), (skips if skips != SKIPS_FILE else None, "--skips")):
            if given is not None:
                raise UsageError(f"{flag} {given}: with MLCTL_SERVER, the server checks its own synthesis against "
                                 "its own skip file, never files on this machine",
                                 hint=f"drop {flag} (or unset MLCTL_SERVER to check them here)")
        view: View = api.infra.run("check", blueprint=served_blueprint(blueprint), progress=progress)
    else:
        view = service.check(Context(), local_blueprint(blueprint), stacks_dir=stacks_dir, skips=skips,
                             progress=progress)
    show(view, output)


def progress(_stack: str, message: str) -> None:
    info(message)
