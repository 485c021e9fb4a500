"""The infra policy gate (checkov + Rego) over the Azure stacks: the shipped blueprints pass with
only justified findings; injected violations fail it, each named."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from control_plane.policy.findings import StackFile
from control_plane.policy.infra_gate import check_stacks, to_stack_files

REPO = Path(__file__).resolve().parents[2]


def unexplained(report) -> list[tuple[str, str]]:
    return sorted((f.id, f.resource) for f in report.findings if f.skipped_reason is None)


def test_azure_blueprint_passes_the_gate(azure_synth):
    report = check_stacks(to_stack_files(azure_synth.stacks), blueprint="uae-prod-azure.yaml")
    assert report.checkov_version  # checkov really ran
    assert unexplained(report) == []
    assert report.passed
    # the findings accepted are the documented Azure skips, nothing else
    assert {f.id for f in report.findings} <= {
        "CKV_AZURE_40",
        "CKV_AZURE_164",
        "CKV_AZURE_233",
        "CKV_AZURE_33",
        "CKV2_AZURE_21",
    }
    assert not report.stale_skips


@pytest.mark.slow
def test_multicloud_blueprint_synthesizes_both_clouds_in_one_run(multicloud_synth):
    clouds = {(s.environment, s.cloud) for s in multicloud_synth.stacks}
    assert clouds == {("uae-mc-aws", "aws"), ("uae-mc-azure", "azure")}
    azure = [s for s in multicloud_synth.stacks if s.cloud == "azure"]
    assert [s.name for s in azure] == [
        f"uae-mc-azure-{layer}" for layer in ("network", "security", "registry", "cluster")
    ]
    aws_doc = multicloud_synth.doc("uae-mc-aws-network")
    assert aws_doc["provider"]["aws"][0]["region"] == "me-central-1"
    report = check_stacks(to_stack_files(azure), blueprint="uae-multicloud.yaml")
    assert unexplained(report) == []


def _mutated(azure_synth, tmp_path: Path, stack: str, mutate) -> StackFile:
    doc = copy.deepcopy(azure_synth.doc(stack))
    mutate(doc["resource"])
    path = tmp_path / stack / "cdk.tf.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(doc))
    return StackFile(name=stack, path=path, cloud="azure")


def _first(resources: dict, rtype: str) -> tuple[str, dict]:
    name, cfg = next(iter(resources[rtype].items()))
    return f"{rtype}.{name}", cfg


def test_injected_violations_fail_the_gate_naming_each(azure_synth, tmp_path):
    named: dict[str, str] = {}

    def registry(res):
        addr, sa = _first(res, "azurerm_storage_account")
        sa["public_network_access_enabled"] = True  # public storage
        sa["allow_nested_items_to_be_public"] = True
        named["public storage"] = addr
        addr, acr = _first(res, "azurerm_container_registry")
        acr["location"] = "westeurope"  # non-UAE location
        named["non-UAE location"] = addr

    def cluster(res):
        addr, aks = _first(res, "azurerm_kubernetes_cluster")
        aks["private_cluster_enabled"] = False  # public API server
        named["public AKS API"] = addr

    stacks = [
        _mutated(azure_synth, tmp_path, "uae-prod-azure-registry", registry),
        _mutated(azure_synth, tmp_path, "uae-prod-azure-cluster", cluster),
    ]
    report = check_stacks(stacks, blueprint="injected")
    assert not report.passed
    found = unexplained(report)
    # our Rego names each violation...
    assert ("UAE-AZ-PUB-001", named["public storage"]) in found
    assert ("UAE-RES-004", named["non-UAE location"]) in found
    assert ("UAE-AZ-PUB-005", named["public AKS API"]) in found
    # ...and checkov agrees on the public ones
    assert ("CKV_AZURE_59", named["public storage"]) in found
    assert ("CKV_AZURE_115", named["public AKS API"]) in found
    messages = {f.message for f in report.unexplained}
    assert any("westeurope" in m for m in messages)


@pytest.mark.parametrize(
    ("stack", "rtype", "mutate", "rule"),
    [
        (
            "registry",
            "azurerm_storage_account",
            lambda c: c.update(shared_access_key_enabled=True),
            "UAE-AZ-PUB-001",
        ),
        ("registry", "azurerm_storage_account", lambda c: c.pop("customer_managed_key"), "UAE-AZ-ENC-001"),
        (
            "registry",
            "azurerm_storage_account",
            lambda c: c.update(infrastructure_encryption_enabled=False),
            "UAE-AZ-ENC-001",
        ),
        (
            "registry",
            "azurerm_storage_account",
            lambda c: c.update(min_tls_version="TLS1_0"),
            "UAE-AZ-ENC-001",
        ),
        (
            "registry",
            "azurerm_storage_container",
            lambda c: c.update(container_access_type="blob"),
            "UAE-AZ-PUB-002",
        ),
        ("registry", "azurerm_container_registry", lambda c: c.update(admin_enabled=True), "UAE-AZ-PUB-004"),
        ("registry", "azurerm_container_registry", lambda c: c.pop("encryption"), "UAE-AZ-ENC-002"),
        (
            "registry",
            "azurerm_container_registry",
            lambda c: c["georeplications"][0].update(location="westeurope"),
            "UAE-AZ-RES-001",
        ),
        (
            "security",
            "azurerm_key_vault",
            lambda c: c.update(purge_protection_enabled=False),
            "UAE-AZ-ENC-004",
        ),
        (
            "security",
            "azurerm_key_vault",
            lambda c: c.update(public_network_access_enabled=True),
            "UAE-AZ-PUB-003",
        ),
        (
            "security",
            "azurerm_key_vault",
            lambda c: c.update(rbac_authorization_enabled=False),
            "UAE-AZ-PUB-003",
        ),
        ("security", "azurerm_key_vault_key", lambda c: c.update(key_size=2048), "UAE-AZ-ENC-005"),
        (
            "cluster",
            "azurerm_kubernetes_cluster",
            lambda c: c.update(local_account_disabled=False),
            "UAE-AZ-PUB-005",
        ),
        (
            "cluster",
            "azurerm_kubernetes_cluster",
            lambda c: c.pop("key_management_service"),
            "UAE-AZ-ENC-003",
        ),
        (
            "cluster",
            "azurerm_kubernetes_cluster_node_pool",
            lambda c: c.update(node_public_ip_enabled=True),
            "UAE-AZ-PUB-006",
        ),
        (
            "network",
            "azurerm_network_security_rule",
            lambda c: c.update(direction="Inbound", access="Allow", source_address_prefix="Internet"),
            "UAE-AZ-PUB-008",
        ),
        (
            "network",
            "azurerm_log_analytics_workspace",
            lambda c: c.update(internet_query_enabled=True),
            "UAE-AZ-PUB-009",
        ),
        ("network", "azurerm_virtual_network", lambda c: c.update(location="qatarcentral"), "UAE-RES-004"),
    ],
)
def test_each_rego_rule_catches_its_violation(azure_synth, tmp_path, stack, rtype, mutate, rule):
    name = f"uae-prod-azure-{stack}"
    target: dict[str, str] = {}

    def apply(res):
        addr, cfg = _first(res, rtype)
        if rtype == "azurerm_key_vault_key":  # the first RSA key, not the EC signing key
            addr, cfg = next((f"{rtype}.{n}", c) for n, c in res[rtype].items() if c["key_type"] == "RSA-HSM")
        mutate(cfg)
        target["addr"] = addr

    report = check_stacks([_mutated(azure_synth, tmp_path, name, apply)], with_checkov=False)
    assert (rule, target["addr"]) in unexplained(report)
