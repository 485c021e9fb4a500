"""``mlctl kserve``: see and check the Kubernetes objects a release would apply, without a cluster.

    mlctl kserve render --model fraud --version 7 --digest sha256:... --release-id R \\
        --storage-uri s3://BUCKET/fraud/7/ --blueprint blueprints/uae-prod-aws.yaml --colour green
    mlctl kserve validate manifests/*.yaml

Useful for review and GitOps: every object is validated against the KServe / Gateway API CRDs
(``$KSERVE_CRDS_DIR``) before it is printed.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from blueprints import load_environment
from control_plane.errors import MlctlError
from control_plane.kserve import crds
from control_plane.kserve.httproute import render_http_route
from control_plane.kserve.model import ModelFormat, ServedModel, ServingOptions, parse_mode
from control_plane.kserve.render import render_inference_service
from control_plane.output import OutputFormat, OutputOption, console, emit_json, info
from control_plane.settings import DEFAULT_BLUEPRINT

app = typer.Typer(help="Render and validate KServe InferenceServices and HTTPRoutes.", no_args_is_help=True)


def _weights(raw: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in raw.split(","):
        colour, sep, value = part.partition("=")
        if not sep or not value.strip().isdigit():
            raise MlctlError(
                f"--weights {raw!r} is not COLOUR=PERCENT,...", hint="e.g. --weights blue=90,green=10"
            )
        out[colour.strip()] = int(value)
    return out


def _check(objects: list[dict[str, Any]], strict: bool) -> None:
    try:
        for obj in objects:
            crds.validate(obj)
    except crds.CrdsMissing as exc:
        if strict:
            raise
        info(f"[yellow]note:[/] not validated against the CRDs ({exc.message}); {exc.hint}")


def _emit(objects: list[dict[str, Any]], output: OutputFormat) -> None:
    if output is OutputFormat.json:
        emit_json(objects)
    else:
        # plain stdout: YAML must not be re-wrapped to the terminal width
        typer.echo(yaml.safe_dump_all(objects, sort_keys=False, width=1_000), nl=False)


@app.command()
def render(
    model: Annotated[str, typer.Option(help="Registered model name.")],
    version: Annotated[str, typer.Option(help="Model version.")],
    digest: Annotated[str, typer.Option(help="The model version's digest (sha256:<hex>).")],
    release_id: Annotated[str, typer.Option(help="Release id recorded in labels.")],
    storage_uri: Annotated[str, typer.Option(help="Model repository in the environment's registry bucket.")],
    service: Annotated[str | None, typer.Option(help="Service name (default: the model name).")] = None,
    model_format: Annotated[
        ModelFormat, typer.Option("--format", help="onnx or tensorrt.")
    ] = ModelFormat.onnx,
    blueprint: Annotated[Path, typer.Option("--blueprint", "-b", help="Blueprint file.")] = DEFAULT_BLUEPRINT,
    env: Annotated[str | None, typer.Option("--env", "-e", help="Environment in the blueprint.")] = None,
    mode: Annotated[str, typer.Option(help="Standard or Knative (old names accepted).")] = "Standard",
    colour: Annotated[str, typer.Option(help="blue or green (Standard mode).")] = "green",
    namespace: Annotated[str, typer.Option(help="Namespace.")] = ServingOptions.namespace,
    gpu_pool: Annotated[str | None, typer.Option(help="GPU pool (default: the inference pool).")] = None,
    gpus: Annotated[int, typer.Option(help="GPUs per replica (0: CPU only).")] = 1,
    canary_percent: Annotated[int | None, typer.Option(help="Knative: canaryTrafficPercent.")] = None,
    weights: Annotated[
        str | None, typer.Option(help="Standard: also render the HTTPRoute, e.g. blue=90,green=10.")
    ] = None,
    hostname: Annotated[str | None, typer.Option(help="HTTPRoute hostname.")] = None,
    verifier_image: Annotated[str | None, typer.Option(
        help="In-pod model verifier image, REPO@sha256:<digest> (default: $MLCTL_VERIFIER_IMAGE).")] = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Print the InferenceService (and HTTPRoute) for a model version, validated against the CRDs."""
    environment = load_environment(blueprint, env)
    opts = ServingOptions(
        namespace=namespace,
        mode=parse_mode(mode),
        gpu_pool=gpu_pool,
        gpus=gpus,
        hostnames=(hostname,) if hostname else (),
    )
    if verifier_image:
        opts = dataclasses.replace(opts, verifier_image=verifier_image)
    served = ServedModel(
        name=model,
        version=version,
        digest=digest,
        release_id=release_id,
        format=model_format,
        storage_uri=storage_uri,
    )
    svc = service or model
    objects = [
        render_inference_service(
            served,
            environment,
            service=svc,
            colour=colour,
            options=opts,
            canary_traffic_percent=canary_percent,
        )
    ]
    if weights:
        objects.append(render_http_route(service=svc, weights=_weights(weights), options=opts))
    _check(objects, strict=False)
    _emit(objects, output)


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="YAML files with InferenceServices / HTTPRoutes.")],
    output: OutputOption = OutputFormat.table,
) -> None:
    """Validate manifests against the KServe / Gateway API CRD schemas (strict: unknown fields fail)."""
    results: list[dict[str, Any]] = []
    for path in files:
        try:
            docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
        except (OSError, yaml.YAMLError) as exc:
            raise MlctlError(
                f"{path}: cannot read YAML ({exc})", hint="pass readable YAML manifest files"
            ) from None
        for doc in docs:
            if not isinstance(doc, dict):
                raise MlctlError(
                    f"{path}: a YAML document is not an object", hint="one manifest per document"
                )
            name = f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"
            results.append({"file": str(path), "object": name, "errors": crds.validation_errors(doc)})
    bad = [r for r in results if r["errors"]]
    if output is OutputFormat.json:
        emit_json({"valid": not bad, "objects": results})
    else:
        for r in results:
            mark = "[red]invalid[/]" if r["errors"] else "[green]valid[/]"
            console.print(f"{mark} {r['file']}: {r['object']}", soft_wrap=True)
            for err in r["errors"]:
                console.print(f"    {err}", markup=False, highlight=False, soft_wrap=True)
    if bad:
        raise MlctlError(
            f"{len(bad)} of {len(results)} object(s) do not match their CRD schema",
            hint="fix the fields listed above",
        )
