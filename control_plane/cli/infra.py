"""``mlctl infra``: synthesize, bootstrap, plan, apply, check drift and destroy a blueprint's stacks.

Stacks run in dependency order with progress on stderr; ``--output json`` prints results on stdout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from blueprints import load_blueprint
from control_plane.errors import DriftDetected
from control_plane.infra import lifecycle
from control_plane.infra.bootstrap import bootstrap as bootstrap_backend
from control_plane.infra.synth import default_outdir
from control_plane.output import OutputFormat, OutputOption, console, emit_json, info, table
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


def _progress(stack: str, message: str) -> None:
    info(f"[bold]{stack}[/]: {message}")


def _workspace(blueprint: Path, outdir: Path | None, no_synth: bool) -> lifecycle.Workspace:
    return lifecycle.workspace(blueprint, outdir=outdir, synthesize=not no_synth, progress=_progress)


def _results(title: str, results: list[lifecycle.StackResult], output: OutputFormat) -> None:
    if output is OutputFormat.json:
        emit_json({"stacks": [r.as_dict() for r in results]})
        return
    console.print(table(title, ["stack", "result", "seconds", "detail"],
                        [(r.stack, r.action, f"{r.seconds:.1f}", r.detail) for r in results]))


@app.command()
def synth(
    blueprint: BlueprintOption = DEFAULT_BLUEPRINT,
    outdir: OutdirOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Synthesize the blueprint's stacks into Terraform JSON (one directory per stack)."""
    out = outdir or default_outdir(blueprint)
    ws = lifecycle.workspace(blueprint, outdir=out, progress=_progress)
    if output is OutputFormat.json:
        emit_json({"outdir": str(out), "stacks": [s.as_dict() for s in ws.stacks]})
        return
    console.print(table(f"stacks synthesized into {out}", ["order", "stack", "environment", "cloud", "depends on"],
                        [(s.order, s.name, s.environment, s.cloud, ", ".join(s.dependencies))
                         for s in ws.stacks]))


@app.command()
def bootstrap(blueprint: BlueprintOption = DEFAULT_BLUEPRINT, output: OutputOption = OutputFormat.table) -> None:
    """Create the remote-state backend; idempotent. AWS: a versioned, SSE-KMS, private S3 bucket and its
    state key. Azure: pre-flight checks (resource providers, region, VM sizes), then the resource group
    and a private, CMK-encrypted, versioned state storage account."""
    from blueprints.schema import Cloud

    rows: list[tuple[str, str, str, str, str]] = []
    payload: list[dict[str, object]] = []
    for env in load_blueprint(blueprint).environments:
        if env.cloud is Cloud.azure:
            from control_plane.infra.azure import bootstrap_azure

            _progress(env.name, f"pre-flight and state storage in {env.region}")
            az = bootstrap_azure(env)
            payload.append({"cloud": "azure", **az.as_dict()})
            rows.append((az.environment, f"azurerm://{az.storage_account}/{az.container}", az.region,
                         az.key_id, "-"))
            continue
        _progress(env.name, f"state backend s3://{env.state.bucket} in {env.region}")
        r = bootstrap_backend(env)
        payload.append({"cloud": "aws", **r.as_dict()})
        rows.append((r.environment, f"s3://{r.bucket}", r.region, r.kms_key_arn,
                     "bucket+key" if r.created_bucket and r.created_key else
                     "bucket" if r.created_bucket else "key" if r.created_key else "no"))
    if output is OutputFormat.json:
        emit_json({"backends": payload})
        return
    console.print(table("state backends", ["environment", "backend", "region", "state key", "new"], rows))


@app.command()
def plan(
    blueprint: BlueprintOption = DEFAULT_BLUEPRINT,
    outdir: OutdirOption = None,
    no_synth: NoSynthOption = False,
    output: OutputOption = OutputFormat.table,
) -> None:
    """terraform plan for every stack (a stack whose inputs are not applied yet shows as blocked)."""
    ws = _workspace(blueprint, outdir, no_synth)
    _results("plan", lifecycle.plan(ws, _progress), output)


@app.command()
def apply(
    blueprint: BlueprintOption = DEFAULT_BLUEPRINT,
    outdir: OutdirOption = None,
    no_synth: NoSynthOption = False,
    output: OutputOption = OutputFormat.table,
) -> None:
    """terraform apply every stack in dependency order (run `mlctl infra bootstrap` once before)."""
    ws = _workspace(blueprint, outdir, no_synth)
    _results("apply", lifecycle.apply(ws, _progress), output)


@app.command()
def drift(
    blueprint: BlueprintOption = DEFAULT_BLUEPRINT,
    outdir: OutdirOption = None,
    no_synth: NoSynthOption = False,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Compare what is deployed with the stacks; exits 5 and names each changed resource on drift."""
    ws = _workspace(blueprint, outdir, no_synth)
    items = lifecycle.drift(ws, _progress)
    if output is OutputFormat.json:
        emit_json({"drift": bool(items), "changes": [i.as_dict() for i in items]})
    elif items:
        console.print(table("drift", ["stack", "resource", "actions", "attributes", "source"],
                            [(i.stack, i.address, ",".join(i.actions), ", ".join(i.attributes), i.source)
                             for i in items]))
    else:
        console.print("no drift: every stack matches what is deployed")
    if items:
        names = ", ".join(sorted({i.address for i in items}))
        raise DriftDetected(
            f"{len(items)} resource(s) drifted: {names}",
            hint="revert the manual change, or run `mlctl infra apply` to converge back to the blueprint",
        )


@app.command()
def destroy(
    blueprint: BlueprintOption = DEFAULT_BLUEPRINT,
    outdir: OutdirOption = None,
    no_synth: NoSynthOption = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    output: OutputOption = OutputFormat.table,
) -> None:
    """terraform destroy every stack in reverse dependency order."""
    if not yes:
        typer.confirm(f"destroy every resource of {blueprint}?", abort=True)
    ws = _workspace(blueprint, outdir, no_synth)
    _results("destroy", lifecycle.destroy(ws, _progress), output)


def _attach_check() -> None:
    # The policy gate lives in control_plane.policy; it is a step of the infra lifecycle for users.
    from control_plane.cli.infra_check import check

    app.command("check")(check)


_attach_check()
