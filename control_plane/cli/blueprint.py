"""``mlctl blueprint validate``: check environment blueprints without synthesizing anything."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from blueprints import load_blueprint
from blueprints.schema import Environment
from control_plane.errors import BlueprintError, MlctlError
from control_plane.output import OutputFormat, OutputOption, console, emit_json, err_console, table

app = typer.Typer(
    help="Environment blueprints: validate the YAML that the infrastructure and the control plane share.",
    no_args_is_help=True,
)


def _summary(env: Environment) -> dict[str, Any]:
    return {
        "name": env.name,
        "cloud": str(env.cloud),
        "region": env.region,
        "vpc_cidr": str(env.network.vpc_cidr),
        "segments": [str(s.name) for s in env.network.segments],
        "gpu_pools": [f"{p.name} ({p.instance_type})" for p in env.cluster.gpu_pools],
        "local": env.is_local,
    }


@app.command("validate")
def validate(
    files: Annotated[list[Path], typer.Argument(help="Blueprint YAML files.", show_default=False)],
    output: OutputOption = OutputFormat.table,
) -> None:
    """Load and validate each file: residency, CIDRs, GPU catalogue, required fields.

    Exits 2 naming the file, the field and the fix when any file is invalid.
    """
    results: list[dict[str, Any]] = []
    failures: list[MlctlError] = []
    for path in files:
        try:
            bp = load_blueprint(path)
        except MlctlError as exc:
            failures.append(exc)
            results.append({"file": str(path), "valid": False, "error": exc.message, "fix": exc.hint})
            continue
        results.append(
            {"file": str(path), "valid": True, "environments": [_summary(e) for e in bp.environments]}
        )
    if output == OutputFormat.json:
        emit_json({"valid": not failures, "files": results})
    else:
        rows = [
            (r["file"], str(e["name"]), str(e["cloud"]), str(e["region"]), ", ".join(e["gpu_pools"]) or "-")
            for r in results
            if r["valid"]
            for e in r["environments"]
        ]
        if rows:
            columns = ["file", "environment", "cloud", "region", "GPU pools"]
            console.print(table("Valid blueprints", columns, rows))
        # every failure but the last is printed here; the last one is raised for the CLI to print
        for failure in failures[:-1]:
            err_console.print(f"[bold red]error:[/] {escape(failure.message)}", highlight=False)
            if failure.hint:
                err_console.print(f"  [bold]fix:[/] {escape(failure.hint)}", highlight=False)
    if failures:
        last = failures[-1]
        if len(failures) == 1:
            raise last
        raise BlueprintError(
            f"{len(failures)} of {len(files)} blueprint(s) invalid; the last: {last.message}",
            hint=last.hint or "fix the fields named above",
        )
