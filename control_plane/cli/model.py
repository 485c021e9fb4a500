"""``mlctl model``: register, show, list, sign, verify and export model versions."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.tree import Tree

from control_plane import registry
from control_plane.output import OutputFormat, OutputOption, console, emit_json, info, table
from control_plane.registry.lineage import CLASSIFICATIONS

app = typer.Typer(help="Model registry: register with lineage, show, list, sign, verify and export.", no_args_is_help=True)

BlueprintOption = Annotated[
    Path | None,
    typer.Option("--blueprint", "-b", help="Environment blueprint for the S3 store / KMS signer "
                 "(default: $MLCTL_BLUEPRINT or blueprints/uae-local.yaml)."),
]


def _use_blueprint(blueprint: Path | None) -> None:
    if blueprint is not None:
        os.environ["MLCTL_BLUEPRINT"] = str(blueprint)


def _env() -> Any:
    from control_plane.environments import default_environment

    return default_environment()


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
    """Register a model directory as NAME:VERSION with its lineage (identical bytes again: no-op)."""
    from control_plane.artifacts import get_store

    _use_blueprint(blueprint)
    artifact_store = get_store(store) if store else None
    mv = registry.register(
        name, version, path, datasets=dataset or [], features=features or [], code_commit=code_commit,
        config=config, params=params, metrics=metrics, parent=parent, classification=classification,
        store=artifact_store,
    )
    if output is OutputFormat.json:
        emit_json({**mv.as_dict(), "created": mv.created})
        return
    verb = "registered" if mv.created else "already registered with identical bytes (no change):"
    console.print(f"{verb} [bold]{mv.ref}[/] root {mv.root_digest} ({len(mv.files)} files) at {mv.artifact_uri}")
    if mv.created:
        console.print(f"next: mlctl model sign {mv.ref}")


def _tree(mv: registry.ModelVersion) -> Tree:
    sig = mv.signature
    tree = Tree(f"[bold]{mv.ref}[/]  {mv.root_digest}")
    tree.add(f"classification: {mv.classification}")
    tree.add(f"registered by {mv.registered_by} at {mv.created_at}")
    tree.add(f"artifact: {mv.artifact_uri}")
    if sig.signed:
        tree.add(f"signed by {sig.signed_by} at {sig.signed_at} with {sig.signer_kind} key {sig.key_id}"
                 + (" (provenance signed)" if sig.provenance_signed else ""))
    else:
        tree.add("[yellow]not signed[/]")
    lineage = tree.add("lineage")
    lin = mv.lineage
    for ds in lin.get("datasets", []):
        lineage.add(f"dataset {ds['ref']}")
    for ft in lin.get("features", []):
        lineage.add(f"features {ft['name']}@{ft['version']}")
    code = lin.get("code", {})
    code_text = f"code {code.get('commit', 'unknown')}"
    if code.get("repository"):
        code_text += f" ({code['repository']})"
    if code.get("dirty"):
        code_text += " [yellow]uncommitted changes[/]"
    lineage.add(code_text)
    if lin.get("config"):
        lineage.add(f"config {lin['config']['file']} sha256:{lin['config']['sha256']}")
    for key in ("params", "metrics"):
        if lin.get(key):
            branch = lineage.add(key)
            for k, v in sorted(lin[key].items()):
                branch.add(f"{k} = {v}")
    for key in ("parent", "derived_from"):
        if lin.get(key):
            lineage.add(f"{key.replace('_', ' ')} {lin[key]['ref']} (sha256:{lin[key]['root'][:16]}…)")
    if lin.get("extra"):
        branch = lineage.add("derivation")
        for k, v in sorted(lin["extra"].items()):
            branch.add(f"{k} = {v}")
    files = tree.add(f"files ({len(mv.files)})")
    for rel, digest in sorted(mv.files.items()):
        files.add(f"{rel}  sha256:{digest[:16]}…")
    return tree


@app.command()
def show(
    ref: Annotated[str, typer.Argument(help="NAME:VERSION")],
    output: OutputOption = OutputFormat.table,
) -> None:
    """Show a version: digests, signature, lineage as a tree, sibling and derived versions,
    approvals and deployments.

    Example:  mlctl model show digits:2
    """
    from control_plane.registry.overview import overview

    name, version = registry.parse_ref(ref)
    view = overview(name, version)
    if output is OutputFormat.json:
        emit_json(view)
        return
    mv = registry.get_version(name, version)
    tree = _tree(mv)
    tree.add("siblings: " + (", ".join(f"{name}:{v}" for v in view["siblings"]) or "none"))
    tree.add("derived: " + (", ".join(d["ref"] for d in view["derived"]) or "none"))
    appr = tree.add(f"approvals ({len(view['approvals'])})")
    for a in view["approvals"]:
        appr.add(f"{a['env']}: {a['approver']} at {a['created_at']}")
    dep = tree.add(f"deployments ({len(view['deployments'])})")
    for d in view["deployments"]:
        dep.add(f"{d['service']} in {d['environment']}: {d['state']} ({d['release']})" + (" [green]live[/]" if d["live"] else ""))
    console.print(tree)


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
    from control_plane.query import since_cutoff

    cutoff = since_cutoff(since)
    versions = [v for v in registry.list_versions(name or model)
                if (actor is None or v.registered_by == actor) and (cutoff is None or v.created_at >= cutoff)]
    if output is OutputFormat.json:
        emit_json([v.as_dict() for v in versions])
        return
    console.print(table(
        "Model versions", ["model", "version", "root", "class", "signed", "registered by", "created"],
        [(v.name, v.version, v.root_digest, v.classification,
          v.signature.signer_kind if v.signature.signed else "no", v.registered_by, v.created_at) for v in versions],
    ))


@app.command()
def sign(
    ref: Annotated[str, typer.Argument(help="NAME:VERSION")],
    signer: Annotated[str, typer.Option("--signer", help="local (development key), kms or pkcs11.")] = "local",
    blueprint: BlueprintOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Sign a version (OpenSSF model-signing bundle + signed provenance) and store it in the registry."""
    _use_blueprint(blueprint)
    name, version = registry.parse_ref(ref)
    mv = registry.sign(name, version, signer_kind=signer, env=_env() if signer == "kms" else None)
    if output is OutputFormat.json:
        emit_json(mv.as_dict())
        return
    if mv.signature.signer_kind == "local-dev":
        info("[yellow]note:[/] signed with the local DEVELOPMENT key; use --signer kms or pkcs11 for production")
    console.print(f"signed [bold]{mv.ref}[/] ({mv.root_digest}) with {mv.signature.signer_kind} key "
                  f"{mv.signature.key_id}; provenance signed")


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
    from control_plane.errors import MlctlError

    _use_blueprint(blueprint)
    pem = None
    if key is not None:
        try:
            pem = key.read_bytes()
        except OSError as exc:
            raise MlctlError(f"--key {key}: cannot read it ({exc})", hint="pass a PEM public key file") from None
    if bundle is not None:
        _verify_bundle(bundle, path, pem, ref, output)
        return
    if ref is None:
        raise MlctlError("missing NAME:VERSION", hint="mlctl model verify NAME:V, or --bundle FILE --public-key PEM",
                         exit_code=2)
    name, version = registry.parse_ref(ref)
    result = registry.verify(name, version, path=path, public_key_pem=pem)
    if output is OutputFormat.json:
        emit_json({"verified": True, **result.as_dict()})
        return
    console.print(f"[green]verified[/] {result.ref}: {result.files} files from {result.source} match "
                  f"{result.root_digest}, signed by {result.key_id} ({result.signer_kind}; key from "
                  f"{result.key_source}); provenance {result.provenance}")


def _verify_bundle(bundle: Path, path: Path | None, pem: bytes | None, ref: str | None,
                   output: OutputFormat) -> None:
    from control_plane.registry.export import verify_bundle

    result = verify_bundle(bundle, path=path, public_key_pem=pem, ref=ref)
    if output is OutputFormat.json:
        emit_json({"verified": True, **result.as_dict()})
        return
    console.print(f"[green]verified[/] {result.directory}: {result.files} files match {result.bundle} "
                  f"({result.root_digest}{', ' + result.ref if result.ref else ''}), signed by {result.key_id} "
                  f"(key from {result.key_source})")


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
    from control_plane.registry.export import export as export_version

    _use_blueprint(blueprint)
    name, version = registry.parse_ref(ref)
    result = export_version(name, version, directory, public_key_out=public_key_out)
    if output is OutputFormat.json:
        emit_json(result.as_dict())
        return
    console.print(f"exported [bold]{result.ref}[/] ({result.root_digest}, {result.files} files, verified) to "
                  f"{result.directory}; signature {result.signature}; public key {result.public_key} "
                  f"({result.key_id})")
    console.print(f"verify anywhere: {result.upstream_command()}", soft_wrap=True, markup=False)


# Steps owned by other packages, exposed under `mlctl model` where release engineers look for them.
def _attach_steps() -> None:
    from control_plane.cli.model_optimize import optimize
    from control_plane.cli.model_validate import validate

    app.command("optimize")(optimize)
    app.command("validate")(validate)


_attach_steps()
