"""``mlctl kserve``: see and check the Kubernetes objects a release would apply, without a cluster.

    mlctl kserve render --model fraud --version 7 --digest sha256:... --release-id R \\
        --storage-uri s3://BUCKET/fraud/7/ --blueprint blueprints/uae-prod-aws.yaml --colour green -o yaml
    mlctl kserve validate manifests/*.yaml

Useful for review and GitOps: every object is validated against the KServe / Gateway API CRDs
(``$KSERVE_CRDS_DIR``) before it is printed: ``-o yaml`` for the manifests, a table of what they
set by default. The verbs are ``services.manifests``.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from control_plane.cli._show import show
from control_plane.kserve.model import ModelFormat, ServedModel, ServingOptions
from control_plane.output import OutputFormat, OutputOption, info
from control_plane.services import Context, manifests
from control_plane.settings import DEFAULT_BLUEPRINT

app = typer.Typer(help="Render and validate KServe InferenceServices and HTTPRoutes.", no_args_is_help=True)


class RenderFormat(StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"


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
    output: Annotated[RenderFormat, typer.Option(
        "--output", "-o", help="table (kind, name, namespace, key settings), yaml (the manifests, for "
        "`kubectl apply -f` or GitOps) or json (the objects, stable keys).")] = RenderFormat.table,
) -> None:
    """Print the InferenceService (and HTTPRoute) for a model version, validated against the CRDs."""
    served = ServedModel(name=model, version=version, digest=digest, release_id=release_id,
                         format=model_format, storage_uri=storage_uri)
    view = manifests.kserve_render(
        Context(), served, blueprint=blueprint, env=env, service=service, mode=mode, colour=colour,
        namespace=namespace, gpu_pool=gpu_pool, gpus=gpus, canary_percent=canary_percent, weights=weights,
        hostname=hostname, verifier_image=verifier_image, note=info,
    )
    if output is RenderFormat.yaml:
        # plain stdout: YAML must not be re-wrapped to the terminal width
        typer.echo(view.as_yaml(), nl=False)
        return
    show(view, output.value)


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="YAML files with InferenceServices / HTTPRoutes.")],
    output: OutputOption = OutputFormat.table,
) -> None:
    """Validate manifests against the KServe / Gateway API CRD schemas (strict: unknown fields fail)."""
    show(manifests.kserve_validate(Context(), files), output)
