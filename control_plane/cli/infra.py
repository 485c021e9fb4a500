"""``mlctl infra``: synthesize, bootstrap, plan, apply, check drift and destroy a blueprint's stacks.

Stacks run in dependency order with progress on stderr; ``--output json`` prints results on stdout.
The verbs live in ``control_plane.services.infra`` (RBAC and audit there); this module translates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from control_plane.cli._show import show, stack_progress
from control_plane.output import OutputFormat, OutputOption
from control_plane.services import Context
from control_plane.services import infra as service
from control_plane.settings import DEFAULT_BLUEPRINT

app = typer.Typer(
    help="Render the blueprint into Terraform (CDKTF) and run its lifecycle: synth, bootstrap, plan, apply, "
    "drift, destroy.",
    no_args_is_help=True,
)

BlueprintOption = Annotated[Path, typer.Option("--blueprint", "-b", help="Blueprint YAML file.")]
OutdirOption = Annotated[
    Path | None,
    typer.Option("--outdir", help="Synthesis directory (default: $MLCTL_HOME/infra/<blueprint>/cdktf.out)."),
]
NoSynthOption = Annotated[
    bool, typer.Option("--no-synth", help="Reuse the stacks already synthesized in --outdir.")
]


@app.command()
def synth(
    blueprint: BlueprintOption = DEFAULT_BLUEPRINT,
    outdir: OutdirOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Synthesize the blueprint's stacks into Terraform JSON (one directory per stack)."""
    show(service.synth(Context(), blueprint, outdir=outdir, progress=stack_progress), output)


@app.command()
def bootstrap(blueprint: BlueprintOption = DEFAULT_BLUEPRINT, output: OutputOption = OutputFormat.table) -> None:
    """Create the remote-state backend; idempotent. AWS: a versioned, SSE-KMS, private S3 bucket and its
    state key. Azure: pre-flight checks (resource providers, region, VM sizes), then the resource group
    and a private, CMK-encrypted, versioned state storage account. Needs the platform-admin role."""
    show(service.bootstrap(Context(), blueprint, progress=stack_progress), output)


@app.command()
def plan(
    blueprint: BlueprintOption = DEFAULT_BLUEPRINT,
    outdir: OutdirOption = None,
    no_synth: NoSynthOption = False,
    output: OutputOption = OutputFormat.table,
) -> None:
    """terraform plan for every stack (a stack whose inputs are not applied yet shows as blocked)."""
    show(service.plan(Context(), blueprint, outdir=outdir, no_synth=no_synth, progress=stack_progress), output)


@app.command()
def apply(
    blueprint: BlueprintOption = DEFAULT_BLUEPRINT,
    outdir: OutdirOption = None,
    no_synth: NoSynthOption = False,
    output: OutputOption = OutputFormat.table,
) -> None:
    """terraform apply every stack in dependency order (run `mlctl infra bootstrap` once before).
    Needs the platform-admin role."""
    show(service.apply(Context(), blueprint, outdir=outdir, no_synth=no_synth, progress=stack_progress), output)


@app.command()
def drift(
    blueprint: BlueprintOption = DEFAULT_BLUEPRINT,
    outdir: OutdirOption = None,
    no_synth: NoSynthOption = False,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Compare what is deployed with the stacks; exits 5 and names each changed resource on drift."""
    show(service.drift(Context(), blueprint, outdir=outdir, no_synth=no_synth, progress=stack_progress), output)


@app.command()
def destroy(
    blueprint: BlueprintOption = DEFAULT_BLUEPRINT,
    outdir: OutdirOption = None,
    no_synth: NoSynthOption = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    output: OutputOption = OutputFormat.table,
) -> None:
    """terraform destroy every stack in reverse dependency order. Needs the platform-admin role."""
    if not yes:
        typer.confirm(f"destroy every resource of {blueprint}?", abort=True)
    show(service.destroy(Context(), blueprint, outdir=outdir, no_synth=no_synth, progress=stack_progress), output)


def _attach_check() -> None:
    # The policy gate lives in control_plane.policy; it is a step of the infra lifecycle for users.
    from control_plane.cli.infra_check import check

    app.command("check")(check)


_attach_check()
