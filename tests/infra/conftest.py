"""Infra fixtures: terraform (with the offline provider mirror). The blueprints' syntheses
(``local_synth``, ``prod_synth``) are the session's shared ones, in tests/conftest.py."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from tests.synthesis import REPO

# The EKS roles attach AWS managed policies (AmazonEKSClusterPolicy, ...); moto only knows them when
# this is set in the server's environment. The session moto server inherits ours, and starts after
# collection, so setting it here (at import) reaches it.
os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")


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
