"""``mlctl infra check``: the policy gate over a blueprint's synthesized stacks.

``check`` is a plain typer command function; the ``infra`` group registers it as ``check``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from control_plane.errors import PolicyViolation
from control_plane.output import OutputFormat, OutputOption, console, emit_json, info, table
from control_plane.policy.findings import GateReport
from control_plane.policy.infra_gate import SKIPS_FILE, check_blueprint, check_stacks, stacks_in
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
    if stacks_dir is not None:
        report = check_stacks(stacks_in(stacks_dir), blueprint=str(stacks_dir), skips_path=skips)
    else:
        info(f"synthesizing {blueprint} ...")
        report = check_blueprint(blueprint, skips_path=skips)
    if output == OutputFormat.json:
        emit_json(report.as_dict())
    else:
        _print(report)
    for stale in report.stale_skips:
        info(
            f"[yellow]warning:[/] skip entry {stale.index} ({escape(stale.id)} on {escape(stale.resource)}) "
            "matched no finding; remove it from the skip file if the stack was fixed"
        )
    if not report.passed:
        ids = ", ".join(sorted({f"{f.id} {f.resource}" for f in report.unexplained})[:5])
        more = "" if len(report.unexplained) <= 5 else f" (+{len(report.unexplained) - 5} more)"
        raise PolicyViolation(
            f"infra policy gate failed: {len(report.unexplained)} unexplained finding(s): {ids}{more}",
            hint=f"fix the stacks, or justify an accepted finding in {report.skips_file} "
            "(id, resource, reason)",
        )


def _print(report: GateReport) -> None:
    rows = [
        (
            "[red]FAIL[/]" if f.skipped_reason is None else "[dim]skipped[/]",
            f.source,
            escape(f.id),
            escape(f.stack),
            escape(f.resource),
            escape(
                f.message
                if f.skipped_reason is None
                else f"{f.message} — accepted: {_gist(f.skipped_reason)}"
            ),
        )
        for f in sorted(report.findings, key=lambda f: (f.skipped_reason is not None, f.stack, f.resource))
    ]
    if rows:
        columns = ["status", "source", "id", "stack", "resource", "message"]
        console.print(table("Infra policy findings", columns, rows))
    console.print(("[green]" if report.passed else "[red]") + escape(report.summary()) + "[/]")


def _gist(reason: str) -> str:
    """The first sentence of a skip reason: the table stays readable; --output json has it all."""
    head, dot, _ = reason.partition(". ")
    return head + (dot.strip() if dot else "")
