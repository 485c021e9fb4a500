"""Build every environment of a blueprint into one CDKTF app, dispatching on ``env.cloud``."""

from __future__ import annotations

import json
import os
from pathlib import Path

from blueprints import load_blueprint
from blueprints.conventions import STACKS_INDEX
from blueprints.schema import Cloud, Environment
from control_plane.errors import BlueprintError
from control_plane.settings import DEFAULT_BLUEPRINT, PROJECT_ROOT
from modules.cdk import App
from stacks.built import BuiltStack


def build_environment(app: App, env: Environment) -> list[BuiltStack]:
    """The stacks of one environment in apply order. The one dispatch point per cloud."""
    if env.cloud is Cloud.aws:
        from stacks.aws import build_aws_environment

        return build_aws_environment(app, env)
    if env.cloud is Cloud.azure:
        from stacks.azure import build_azure_environment

        return build_azure_environment(app, env)
    raise BlueprintError(
        f"environment '{env.name}': cloud '{env.cloud}' has no stacks",
        hint="use cloud: aws or cloud: azure",
    )


def blueprint_path() -> Path:
    raw = os.environ.get("BLUEPRINT")
    if not raw:
        return DEFAULT_BLUEPRINT
    path = Path(raw)
    return path if path.is_absolute() or path.exists() else PROJECT_ROOT / path


def main() -> None:
    bp = load_blueprint(blueprint_path())
    app = App()  # outdir: $CDKTF_OUTDIR (set by the cdktf CLI and by mlctl) or cdktf.out
    built: list[BuiltStack] = []
    for env in bp.environments:
        built.extend(build_environment(app, env))
    app.synth()
    index = {
        "blueprint": bp.name,
        "stacks": [
            {"name": b.name, "environment": b.environment, "cloud": b.cloud, "layer": b.layer, "order": b.order}
            for b in built
        ],
    }
    (Path(app.outdir) / STACKS_INDEX).write_text(json.dumps(index, indent=2) + "\n")
