"""``mlctl model``: register, show, list, sign, verify and export model versions.

Thin: each command parses its flags, calls ``control_plane.services.models`` (which authorizes,
does the work and audits) and renders the view it returns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from control_plane import settings
from control_plane.cli._served_names import served_blueprint
from control_plane.client import remote
from control_plane.errors import UsageError
from control_plane.output import OutputFormat, OutputOption, render
from control_plane.registry import parse_ref
from control_plane.registry.lineage import CLASSIFICATIONS
from control_plane.services import Context
from control_plane.services import models as service

app = typer.Typer(help="Model registry: register with lineage, show, list, sign, verify and export.", no_args_is_help=True)

BlueprintOption = Annotated[
    Path | None,
    typer.Option("--blueprint", "-b", help="Environment blueprint for the S3 store / KMS signer "
                 "(default: $MLCTL_BLUEPRINT or blueprints/uae-local.yaml)."),
]


def _context(blueprint: Path | None = None) -> Context:
    """The command's Context; ``--blueprint`` is a flag override of the settings (never os.environ)."""
    settings.configure(blueprint=blueprint)
    return Context()


def _env_name(blueprint: Path | None) -> str | None:
    """``--blueprint`` for the server: a blueprint it has, by name (never a file here)."""
    return served_blueprint(blueprint)


@app.command()
def register(
    name: Annotated[str, typer.Argument(help="Model name, e.g. fraud-detector.")],
    version: Annotated[str, typer.Option("--version", "-v", help="Version, e.g. 3 (immutable once registered).")],
    path: Annotated[Path, typer.Option("--path", "-p", help="Directory holding the model files.")],
    dataset: Annotated[list[str] | None, typer.Option(
        "--dataset", help="URI@DIGEST: sha256:<hex>, md5:<hex>, dvc:<commit>, lakefs:<commit>. Repeatable.")] = None,
    features: Annotated[list[str] | None, typer.Option("--features", help="NAME@VERSION. Repeatable.")] = None,
    code_commit: Annotated[str | None, typer.Option(
        "--code-commit", help="Git commit of the training code (default: HEAD of the repo enclosing --path).")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="Training config file (archived, hash stored).")] = None,
    params: Annotated[Path | None, typer.Option("--params", help="JSON file of hyper-parameters.")] = None,
    metrics: Annotated[Path | None, typer.Option("--metrics", help="JSON file of evaluation metrics.")] = None,
    parent: Annotated[str | None, typer.Option("--parent", help="NAME:V this model was fine-tuned from.")] = None,
    classification: Annotated[str, typer.Option(
        "--classification", help=f"Data classification: {', '.join(CLASSIFICATIONS)}.")] = "internal",
    store: Annotated[str | None, typer.Option(
        "--store", help="Artifact store: local (default, $MLCTL_HOME/artifacts) or s3 (the blueprint's bucket).")] = None,
    blueprint: BlueprintOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Register a model directory as NAME:VERSION with its lineage (identical bytes again: no-op).
    With MLCTL_SERVER the directory is uploaded and registered in the server's artifact store."""
    api = remote()
    if api is not None:
        render(api.models.register(
            name, version, path, datasets=dataset or [], features=features or [], code_commit=code_commit,
            config=config, params=params, metrics=metrics, parent=parent, classification=classification,
            store=store, env=_env_name(blueprint)), output)
        return
    view = service.register(
        _context(blueprint), name, version, path, datasets=dataset or [], features=features or [],
        code_commit=code_commit, config=config, params=params, metrics=metrics, parent=parent,
        classification=classification, store=store,
    )
    render(view, output)


@app.command()
def show(
    ref: Annotated[str, typer.Argument(help="NAME:VERSION")],
    output: OutputOption = OutputFormat.table,
) -> None:
    """Show a version: digests, signature, lineage as a tree, sibling and derived versions,
    approvals and deployments.

    Example:  mlctl model show digits:2
    """
    api = remote()
    render(api.models.show(ref) if api is not None else service.show(_context(), ref), output)


@app.command("list")
def list_(
    name: Annotated[str | None, typer.Argument(help="Only versions of this model.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Only versions of this model (as NAME).")] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="Only versions registered by this actor.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Only newer than 30m, 6h, 7d or an ISO date.")] = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """List registered versions (full root digests).

    Example:  mlctl model list --model digits --since 7d
    """
    api = remote()
    render(api.models.list_versions(name or model, actor=actor, since=since) if api is not None
           else service.list_versions(_context(), name or model, actor=actor, since=since), output)


@app.command()
def sign(
    ref: Annotated[str, typer.Argument(help="NAME:VERSION")],
    signer: Annotated[str, typer.Option("--signer", help="local (development key), kms or pkcs11.")] = "local",
    blueprint: BlueprintOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Sign a version (OpenSSF model-signing bundle + signed provenance) and store it in the registry."""
    name, version = parse_ref(ref)
    api = remote()
    render(api.models.sign(name, version, signer=signer, env=_env_name(blueprint)) if api is not None
           else service.sign(_context(blueprint), name, version, signer=signer), output)


@app.command()
def verify(
    ref: Annotated[str | None, typer.Argument(help="NAME:VERSION (optional with --bundle).")] = None,
    path: Annotated[Path | None, typer.Option(
        "--path", help="Verify this local copy (e.g. what a server downloaded) instead of the artifact store's.")] = None,
    key: Annotated[Path | None, typer.Option(
        "--key", "--public-key",
        help="Trust only this public key (PEM) instead of the one recorded in the registry.")] = None,
    bundle: Annotated[Path | None, typer.Option(
        "--bundle", help="Verify against this signature bundle file (e.g. DIR/model.sig from `mlctl model "
        "export`) instead of the registry's; --path defaults to the bundle's directory.")] = None,
    blueprint: BlueprintOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Verify model bytes against the registered signature; refuses naming the file that differs.

    With --bundle no registry is needed: mlctl model verify --bundle out/fraud-3/model.sig
    --public-key out/fraud-3.pub.pem
    """
    api = remote()
    if api is not None:
        if path is not None or bundle is not None or ref is None:
            raise UsageError("with MLCTL_SERVER, mlctl model verify checks the server's artifact store: "
                             "NAME:VERSION [--key PEM]; --path and --bundle verify files on this machine",
                             hint="unset MLCTL_SERVER to verify a local copy, or mlctl model export it first")
        render(api.models.verify(ref, public_key=key), output)
        return
    render(service.verify(_context(blueprint), ref, path=path, public_key=key, bundle=bundle), output)


@app.command()
def export(
    ref: Annotated[str, typer.Argument(help="NAME:VERSION")],
    directory: Annotated[Path, typer.Argument(help="New (or empty) directory to write the model into.")],
    public_key_out: Annotated[Path | None, typer.Option(
        "--public-key-out", help="Where to write the signer's public key (default: DIR.pub.pem, beside DIR).")] = None,
    blueprint: BlueprintOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Export the exact registered bytes with model.sig and the signer's public key, verified on the way out.

    Example: mlctl model export fraud:3 out/fraud-3, then anyone verifies it with
    model_signing verify key --signature out/fraud-3/model.sig --public_key out/fraud-3.pub.pem out/fraud-3
    """
    api = remote()
    render(api.models.export(ref, directory, public_key_out=public_key_out) if api is not None
           else service.export(_context(blueprint), ref, directory, public_key_out=public_key_out), output)


# Steps owned by other packages, exposed under `mlctl model` where release engineers look for them.
def _attach_steps() -> None:
    from control_plane.cli.model_optimize import optimize
    from control_plane.cli.model_validate import validate

    app.command("optimize")(optimize)
    app.command("validate")(validate)


_attach_steps()
