"""Synthesize a blueprint into Terraform JSON, one directory per stack.

Synthesis runs ``python -m stacks`` in a subprocess: importing the provider bindings costs 10-30 s
of jsii start-up, which every other mlctl command should not pay. ``python -m stacks`` and
``cdktf synth`` run the same code, so their output is the same.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from blueprints import load_blueprint
from blueprints.conventions import STACKS_INDEX
from control_plane.errors import BlueprintError, InfraError
from control_plane.settings import PROJECT_ROOT, state_dir

# Written next to cdktf's manifest.json by stacks/__main__.py: what cdktf does not record.


@dataclass(frozen=True)
class SynthesizedStack:
    """One synthesized Terraform root module."""

    name: str  # stack name, prefixed with the environment name (e.g. uae-local-network)
    directory: Path  # terraform working directory
    path: Path  # the cdk.tf.json inside it
    environment: str
    cloud: str
    layer: str  # network, security, registry, cluster, audit
    order: int  # apply order within its environment (destroy runs in reverse)
    dependencies: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["directory"] = str(self.directory)
        out["path"] = str(self.path)
        out["dependencies"] = list(self.dependencies)
        return out


def default_outdir(blueprint_path: str | Path) -> Path:
    return state_dir("infra", Path(blueprint_path).stem) / "cdktf.out"


def synth(
    blueprint_path: str | Path,
    outdir: str | Path | None = None,
    *,
    on_wait: Callable[[float], None] | None = None,
    every: float = 5.0,
) -> list[SynthesizedStack]:
    """Synthesize every environment of a blueprint; stacks come back in apply order. ``on_wait``
    is called with the seconds elapsed every ``every`` seconds while synthesis runs (progress).

    Raises ``BlueprintError`` for an invalid blueprint (checked here first, so the message names the
    file and field without waiting for jsii) and ``InfraError`` when synthesis itself fails.
    """
    blueprint_path = Path(blueprint_path).resolve()
    load_blueprint(blueprint_path)  # fail fast, with file/field/fix
    out = Path(outdir).resolve() if outdir else default_outdir(blueprint_path)
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(BLUEPRINT=str(blueprint_path), CDKTF_OUTDIR=str(out))
    env.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20,22")
    started = time.monotonic()
    with subprocess.Popen(
        [sys.executable, "-m", "stacks"], cwd=PROJECT_ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as proc:
        while True:
            try:
                stdout, stderr = proc.communicate(timeout=every)
                break
            except subprocess.TimeoutExpired:
                if on_wait:
                    on_wait(time.monotonic() - started)
    if proc.returncode != 0:
        output = (stderr or stdout).strip()
        # stacks/__main__.py reports an MlctlError as "error: ..." / "  fix: ..." with its exit code.
        if output.startswith("error: ") and proc.returncode == BlueprintError.exit_code:
            message, _, hint = output.removeprefix("error: ").partition("\n  fix: ")
            raise BlueprintError(message, hint=hint or None)
        tail = "\n".join(output.splitlines()[-15:])
        raise InfraError(
            f"synthesis of {blueprint_path.name} failed:\n{tail}",
            hint="run `BLUEPRINT=<file> python -m stacks` to see the full output",
        )
    return read_synthesized(out)


def read_synthesized(outdir: str | Path) -> list[SynthesizedStack]:
    """The stacks of an existing synthesis output directory, in apply order."""
    out = Path(outdir)
    try:
        index = json.loads((out / STACKS_INDEX).read_text())
        manifest = json.loads((out / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise InfraError(
            f"{out} holds no complete synthesis ({exc})", hint="run `mlctl infra synth --blueprint FILE` first"
        ) from None
    stacks = []
    for entry in index["stacks"]:
        m = manifest["stacks"][entry["name"]]
        stacks.append(
            SynthesizedStack(
                name=entry["name"],
                directory=out / m["workingDirectory"],
                path=out / m["synthesizedStackPath"],
                environment=entry["environment"],
                cloud=entry["cloud"],
                layer=entry["layer"],
                order=entry["order"],
                dependencies=tuple(m.get("dependencies", [])),
            )
        )
    return sorted(stacks, key=lambda s: (s.environment, s.order))
