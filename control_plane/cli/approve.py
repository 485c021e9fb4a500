"""``mlctl approve NAME:V --env ENV``: record an approval and show the gate's decision
(the verb: ``control_plane.services.approvals.approve``)."""

from __future__ import annotations

from typing import Annotated

import typer

from control_plane.cli._served_names import served_env
from control_plane.client import remote
from control_plane.output import OutputFormat, OutputOption, render
from control_plane.registry import parse_ref
from control_plane.services import Context, approvals


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
    api = remote()
    render(api.approve(name, version, served_env(env)) if api is not None else approvals.approve(Context(), name, version, env),
           output)


COMMANDS = {"approve": approve}
