"""``mlctl infra check``: the policy gate over a blueprint's synthesized stacks.

``check`` is a plain typer command function; the ``infra`` group registers it as ``check``.
The verb is ``control_plane.services.infra.check``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from control_plane.cli._show import show
from control_plane.output import OutputFormat, OutputOption, info
from control_plane.policy.infra_gate import SKIPS_FILE
from control_plane.services import Context
from control_plane.services import infra as service
from control_plane.settings import DEFAULT_BLUEPRINT


def check(
    blueprint: Annotated[
        Path,
        typer.Option("--blueprint", "-b", help="Blueprint YAML to synthesize and check."),
    ] = DEFAULT_BLUEPRINT,
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
    view = service.check(Context(), blueprint, stacks_dir=stacks_dir, skips=skips,
                         progress=lambda _stack, message: info(message))
    show(view, output)
