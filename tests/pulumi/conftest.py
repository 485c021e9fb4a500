"""Pulumi fixtures: the program is rendered under Pulumi's mocks once per session (importing
pulumi_aws and its modules costs ~10 s), next to the CDKTF synth of the same blueprint."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.importorskip("pulumi_aws", reason="the Pulumi backend is the optional extra .[pulumi]")

from stacks.pulumi.inventory import Registered, render_with_mocks, terraform_documents
from stacks.pulumi.parity import Inventory, cdktf_inventory
from tests.synthesis import REPO, Synthesis

# The CDKTF side is the session's shared synthesis (``prod_synth``, ``azure_synth``,
# ``multicloud_synth`` in tests/conftest.py): the same cdktf.out tests/infra and tests/azure read.

PROD_AWS = REPO / "blueprints" / "uae-prod-aws.yaml"
ENV = "uae-prod-aws"


@pytest.fixture(scope="session")
def pulumi_registered() -> list[Registered]:
    return render_with_mocks(PROD_AWS)


@pytest.fixture(scope="session")
def pulumi_documents(pulumi_registered: list[Registered]) -> dict[str, dict[str, Any]]:
    return terraform_documents(pulumi_registered)


@pytest.fixture(scope="session")
def cdktf_docs(prod_synth: Synthesis) -> list[dict[str, Any]]:
    return [json.loads(s.path.read_text()) for s in prod_synth.stacks if s.environment == ENV]


@pytest.fixture(scope="session")
def cdktf_inv(cdktf_docs: list[dict[str, Any]]) -> Inventory:
    return cdktf_inventory(cdktf_docs)


# ---- Azure: blueprints/uae-prod-azure.yaml ---------------------------------------------------
PROD_AZURE = REPO / "blueprints" / "uae-prod-azure.yaml"
AZURE_ENV = "uae-prod-azure"


@pytest.fixture(scope="session")
def azure_registered() -> list[Registered]:
    pytest.importorskip("pulumi_azure", reason="the Pulumi backend is the optional extra .[pulumi]")
    return render_with_mocks(PROD_AZURE)


@pytest.fixture(scope="session")
def azure_cdktf_docs(azure_synth: Synthesis) -> list[dict[str, Any]]:
    return [doc for name, doc in azure_synth.docs.items() if name.startswith(f"{AZURE_ENV}-")]


@pytest.fixture(scope="session")
def azure_cdktf_inv(azure_cdktf_docs: list[dict[str, Any]]) -> Inventory:
    return cdktf_inventory(azure_cdktf_docs)
