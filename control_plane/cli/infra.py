"""``mlctl infra``: synthesize, bootstrap, plan, apply, check drift and destroy a blueprint's stacks.

Stacks run in dependency order with progress on stderr; ``--output json`` prints results on stdout.
The verbs live in ``control_plane.services.infra`` (RBAC and audit there); this module translates.
With ``MLCTL_SERVER`` set, the server runs them on its own blueprint (named, never a file here) as
a background operation, and ``client.RemoteInfra`` follows it: the same progress, view and exit code.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from control_plane.cli._infra_blueprint import local_blueprint, served_blueprint
from control_plane.cli._show import show, stack_progress
from control_plane.client import Remote, remote
from control_plane.errors import UsageError
from control_plane.output import OutputFormat, OutputOption, View
from control_plane.services import Context
from control_plane.services import infra as service
from control_plane.settings import DEFAULT_BLUEPRINT

app = typer.Typer(
    help="Render the blueprint into Terraform (CDKTF) and run its lifecycle: synth, bootstrap, plan, apply, "
    "drift, destroy, check. With MLCTL_SERVER, the server runs them on its own blueprints and follows here.",
    no_args_is_help=True,
)

BlueprintOption = Annotated[Path | None, typer.Option(
    "--blueprint", "-b", help="Blueprint YAML file, or a blueprint's name (blueprints/NAME.yaml); default "
    "blueprints/uae-local.yaml. With MLCTL_SERVER: a blueprint the server has, by name; default: the server's.")]
OutdirOption = Annotated[
    Path | None,
    typer.Option("--outdir", help="Synthesis directory (default: $MLCTL_HOME/infra/<blueprint>/cdktf.out); "
                 "not with MLCTL_SERVER (the server synthesizes into its own)."),
]
NoSynthOption = Annotated[
    bool, typer.Option("--no-synth", help="Reuse the stacks already synthesized in --outdir.")
]


def _server(outdir: Path | None) -> Remote | None:
    api = remote()
    if api is not None and outdir is not None:
        raise UsageError(f"--outdir {outdir}: with MLCTL_SERVER, the server synthesizes into its own directory",
                         hint="drop --outdir (or unset MLCTL_SERVER to run terraform from here)")
    return api


def _run(verb: str, blueprint: Path | None, outdir: Path | None, no_synth: bool,
         here: Callable[[Context, Path], View]) -> View:
    """``verb`` through the server when MLCTL_SERVER is set, else ``here`` (the local service verb)."""
    api = _server(outdir)
    if api is not None:
        return api.infra.run(verb, blueprint=served_blueprint(blueprint), no_synth=no_synth,
                             progress=stack_progress)
    return here(Context(), local_blueprint(blueprint))


@app.command()
def synth(
    blueprint: BlueprintOption = None,
    outdir: OutdirOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Synthesize the blueprint's stacks into Terraform JSON (one directory per stack)."""
    show(_run("synth", blueprint, outdir, False,
              lambda ctx, bp: service.synth(ctx, bp, outdir=outdir, progress=stack_progress)), output)


@app.command()
def bootstrap(blueprint: BlueprintOption = None, output: OutputOption = OutputFormat.table) -> None:
    """Create the remote-state backend; idempotent. AWS: a versioned, SSE-KMS, private S3 bucket and its
    state key. Azure: pre-flight checks (resource providers, region, VM sizes), then the resource group
    and a private, CMK-encrypted, versioned state storage account. Needs the platform-admin role."""
    show(_run("bootstrap", blueprint, None, False,
              lambda ctx, bp: service.bootstrap(ctx, bp, progress=stack_progress)), output)


@app.command()
def plan(
    blueprint: BlueprintOption = None,
    outdir: OutdirOption = None,
    no_synth: NoSynthOption = False,
    output: OutputOption = OutputFormat.table,
) -> None:
    """terraform plan for every stack (a stack whose inputs are not applied yet shows as blocked)."""
    show(_run("plan", blueprint, outdir, no_synth, lambda ctx, bp: service.plan(
        ctx, bp, outdir=outdir, no_synth=no_synth, progress=stack_progress)), output)


@app.command()
def apply(
    blueprint: BlueprintOption = None,
    outdir: OutdirOption = None,
    no_synth: NoSynthOption = False,
    output: OutputOption = OutputFormat.table,
) -> None:
    """terraform apply every stack in dependency order (run `mlctl infra bootstrap` once before).
    Needs the platform-admin role."""
    show(_run("apply", blueprint, outdir, no_synth, lambda ctx, bp: service.apply(
        ctx, bp, outdir=outdir, no_synth=no_synth, progress=stack_progress)), output)


@app.command()
def drift(
    blueprint: BlueprintOption = None,
    outdir: OutdirOption = None,
    no_synth: NoSynthOption = False,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Compare what is deployed with the stacks; exits 5 and names each changed resource on drift."""
    show(_run("drift", blueprint, outdir, no_synth, lambda ctx, bp: service.drift(
        ctx, bp, outdir=outdir, no_synth=no_synth, progress=stack_progress)), output)


@app.command()
def destroy(
    blueprint: BlueprintOption = None,
    outdir: OutdirOption = None,
    no_synth: NoSynthOption = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    output: OutputOption = OutputFormat.table,
) -> None:
    """terraform destroy every stack in reverse dependency order. Needs the platform-admin role."""
    if not yes:
        served = _server(outdir) is not None and served_blueprint(blueprint) is None  # refusals before asking
        named = blueprint if blueprint is not None else "the server's default blueprint" if served else DEFAULT_BLUEPRINT
        typer.confirm(f"destroy every resource of {named}?", abort=True)
    show(_run("destroy", blueprint, outdir, no_synth, lambda ctx, bp: service.destroy(
        ctx, bp, outdir=outdir, no_synth=no_synth, progress=stack_progress)), output)


def _attach_check() -> None:
    # The policy gate lives in control_plane.policy; it is a step of the infra lifecycle for users.
    from control_plane.cli.infra_check import check

    app.command("check")(check)


_attach_check()
