"""Azure fixtures: each blueprint is synthesized once per session (jsii start-up is the cost)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


class Synthesis:
    def __init__(self, stacks: list[Any], outdir: Path) -> None:
        self.stacks = stacks
        self.outdir = outdir
        self.docs: dict[str, dict[str, Any]] = {s.name: json.loads(Path(s.path).read_text()) for s in stacks}

    def doc(self, name: str) -> dict[str, Any]:
        return self.docs[name]

    def resources(self, rtype: str, stack: str | None = None) -> dict[str, dict[str, Any]]:
        """``{address: config}`` of every resource of a type (in one stack, or all)."""
        out: dict[str, dict[str, Any]] = {}
        for name, doc in self.docs.items():
            if stack is None or name == stack:
                for rname, cfg in doc.get("resource", {}).get(rtype, {}).items():
                    out[f"{rtype}.{rname}"] = cfg
        return out


def _synth(tmp_path_factory: pytest.TempPathFactory, blueprint: str) -> Synthesis:
    from control_plane.infra.synth import synth

    out = tmp_path_factory.mktemp(Path(blueprint).stem) / "cdktf.out"
    return Synthesis(synth(REPO / blueprint, out), out)


@pytest.fixture(scope="session")
def azure_synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesis:
    return _synth(tmp_path_factory, "blueprints/uae-prod-azure.yaml")


@pytest.fixture(scope="session")
def multicloud_synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesis:
    return _synth(tmp_path_factory, "blueprints/uae-multicloud.yaml")
