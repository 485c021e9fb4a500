"""One synthesis per blueprint per pytest session, shared by every test package.

Synthesizing a blueprint costs 15-40 s (jsii start-up and the provider bindings), so the session
fixtures in ``tests/conftest.py`` (``synthesizer``, ``local_synth``, ``prod_synth``, ``azure_synth``,
``multicloud_synth``) all go through one cache here: tests/infra, tests/azure, tests/pulumi and
tests/policy read the same ``cdktf.out`` instead of each synthesizing its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from control_plane.infra.synth import SynthesizedStack, synth

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Synthesis:
    """A blueprint's synthesized stacks (in apply order) and their Terraform JSON documents."""

    outdir: Path
    stacks: list[SynthesizedStack]
    docs: dict[str, dict[str, Any]] = field(init=False)  # stack name -> document (shared: copy to mutate)

    def __post_init__(self) -> None:
        self.docs = {s.name: json.loads(s.path.read_text()) for s in self.stacks}

    def stack(self, layer: str) -> dict[str, Any]:
        """A fresh copy of the document of the first stack of ``layer`` (network, registry...)."""
        found = next(s for s in self.stacks if s.layer == layer)
        data: dict[str, Any] = json.loads(found.path.read_text())
        return data

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


class Synthesizer:
    """``synthesizer("uae-prod-azure")``: blueprints/<name>.yaml synthesized once per session.

    ``emulator_endpoint`` is part of the key: the local blueprint's providers point at the
    emulator it names, so a synthesis against the session's moto server is a different output."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp = tmp_path_factory
        self._cache: dict[tuple[str, str | None], Synthesis] = {}

    def __call__(self, blueprint: str, *, emulator_endpoint: str | None = None) -> Synthesis:
        key = (blueprint, emulator_endpoint)
        if key not in self._cache:
            out = self._tmp.mktemp(f"synth-{blueprint}") / "cdktf.out"
            with pytest.MonkeyPatch.context() as mp:
                # Never inherit an endpoint a test set for itself: the key says which one applies.
                if emulator_endpoint:
                    mp.setenv("MLCTL_EMULATOR_ENDPOINT", emulator_endpoint)
                else:
                    mp.delenv("MLCTL_EMULATOR_ENDPOINT", raising=False)
                self._cache[key] = Synthesis(out, synth(REPO / "blueprints" / f"{blueprint}.yaml", out))
        return self._cache[key]
