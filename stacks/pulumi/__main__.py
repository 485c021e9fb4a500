"""The Pulumi program (Pulumi.yaml ``main: stacks/pulumi/``): ``pulumi preview`` / ``pulumi up``
render the blueprint named by the stack setting ``sovereign-mlops:blueprint``."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # the engine runs this file with its own directory on sys.path
    sys.path.insert(0, str(REPO))

import pulumi  # noqa: E402

from blueprints import load_blueprint  # noqa: E402
from stacks.pulumi.program import render_blueprint  # noqa: E402

blueprint = pulumi.Config("sovereign-mlops").require("blueprint")
path = Path(blueprint)
render_blueprint(load_blueprint(path if path.is_absolute() else REPO / path))
