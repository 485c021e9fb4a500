"""``mlctl approve NAME:V --env ENV``: record an approval and show the gate's decision."""

from __future__ import annotations

from typing import Annotated

import typer

from control_plane import approvals
from control_plane.output import OutputFormat, OutputOption, console, emit_json
from control_plane.registry import parse_ref


def approve(
    ref: Annotated[str, typer.Argument(help="NAME:VERSION to approve.")],
    env: Annotated[str, typer.Option("--env", "-e", help="Blueprint environment (name or file), e.g. uae-prod-aws; its tier decides the rule.")],
    output: OutputOption = OutputFormat.table,
) -> None:
    """Approve a model version for an environment (you need the approver or security-officer role;
    never for a model you registered). The environment's declared tier decides the rule: dev none,
    staging one approver, prod two distinct approvers (+ a security officer for confidential/pii).
    Staging and prod accept only a verified identity (mlctl login), never --as.

    Example: mlctl approve fraud:3 --env uae-prod-aws"""
    name, version = parse_ref(ref)
    decision = approvals.approve(name, version, env)
    if output is OutputFormat.json:
        emit_json(decision.as_dict())
        return
    state = "[green]release allowed[/]" if decision.allowed else "[yellow]release not yet allowed[/]"
    console.print(f"approval recorded for [bold]{decision.ref}[/] in {decision.env} ({decision.tier} tier); {state}")
    for reason in decision.reasons:
        console.print(f"  - {reason}")


COMMANDS = {"approve": approve}
