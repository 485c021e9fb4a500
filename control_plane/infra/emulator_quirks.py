"""Work-arounds for the AWS emulator (moto) that must not exist against real AWS.

Each function is called only for a local (emulator) environment and says which moto behaviour it
compensates for; docs/infrastructure.md lists them all.
"""

from __future__ import annotations

import json
from typing import Any

from blueprints.schema import Environment
from control_plane.emulator.aws import client_kwargs
from control_plane.infra.synth import SynthesizedStack


def sweep_destroyed_trails(env: Environment, stack: SynthesizedStack) -> list[str]:
    """moto's DeleteTrail matches only a trail *name*, while the AWS provider deletes by ARN, so a
    destroyed trail lives on in the emulator. Delete the stack's trails by name; returns them."""
    if not env.is_local:
        return []
    import boto3

    doc: dict[str, Any] = json.loads(stack.path.read_text())
    names = [str(r["name"]) for r in doc.get("resource", {}).get("aws_cloudtrail", {}).values()]
    if not names:
        return []
    client = boto3.client("cloudtrail", **client_kwargs(env))
    present = {t["Name"] for t in client.describe_trails()["trailList"]}
    swept = [n for n in names if n in present]
    for name in swept:
        client.delete_trail(Name=name)
    return swept
