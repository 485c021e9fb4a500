"""Infra fixtures: each blueprint is synthesized once per session (synthesis costs 15-30 s of jsii
start-up), the local one against the session's moto server so its stacks can really be applied."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from control_plane.infra.synth import SynthesizedStack, synth

REPO = Path(__file__).resolve().parents[2]
# The EKS roles attach AWS managed policies (AmazonEKSClusterPolicy, ...); moto only knows them when
# this is set in the server's environment. The session moto server inherits ours, and starts after
# collection, so setting it here (at import) reaches it.
os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")


@dataclass
class Synthesis:
    outdir: Path
    stacks: list[SynthesizedStack]

    def stack(self, layer: str) -> dict[str, Any]:
        found = next(s for s in self.stacks if s.layer == layer)
        data: dict[str, Any] = json.loads(found.path.read_text())
        return data


@pytest.fixture(scope="session")
def terraform_ready() -> Iterator[None]:
    """terraform on PATH and, where this machine has one, the provider mirror (offline CI)."""
    if shutil.which("terraform") is None:
        pytest.skip("terraform is not installed")
    with pytest.MonkeyPatch.context() as mp:
        if not os.environ.get("MLCTL_TF_PROVIDER_MIRROR"):
            found = subprocess.run([str(REPO / "scripts" / "tf-mirror.sh")], capture_output=True, text=True,
                                   check=False).stdout.strip()
            if found:
                mp.setenv("MLCTL_TF_PROVIDER_MIRROR", found)
        yield


@pytest.fixture(scope="session")
def local_synth(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Synthesis:
    out = tmp_path_factory.mktemp("synth-local") / "cdktf.out"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLCTL_EMULATOR_ENDPOINT", moto_endpoint)
        return Synthesis(out, synth(REPO / "blueprints" / "uae-local.yaml", out))


@pytest.fixture(scope="session")
def prod_synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesis:
    out = tmp_path_factory.mktemp("synth-prod") / "cdktf.out"
    return Synthesis(out, synth(REPO / "blueprints" / "uae-prod-aws.yaml", out))
