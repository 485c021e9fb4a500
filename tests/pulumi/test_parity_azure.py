"""The Pulumi program (pulumi-azure) and the CDKTF synth of blueprints/uae-prod-azure.yaml render the
same azurerm resources with the same settings; a weakening injected on either side is caught and
named; the infra policy gate refuses a Pulumi program changed to a public or non-UAE resource."""

from __future__ import annotations

import copy
from typing import Any

import pytest

pytest.importorskip("pulumi_azure", reason="the Pulumi backend is the optional extra .[pulumi]")

from control_plane.policy.infra_gate import check_documents
from stacks.pulumi.inventory import AZURE_TYPE_MAP, Registered, render_with_mocks, terraform_documents
from stacks.pulumi.parity import (
    AZURE_PROVIDER,
    Inventory,
    cdktf_inventory,
    compare,
    pulumi_inventory,
)
from tests.pulumi.conftest import AZURE_ENV, PROD_AZURE, REPO
from tests.pulumi.parity_helpers import edit, named, transform
from tests.pulumi.parity_helpers import pulumi_inv as inventory_of

ENV = AZURE_ENV




def test_program_renders_every_azure_construct(azure_registered: list[Registered]) -> None:
    names = {r.name for r in azure_registered}
    for construct in ("rg", "logs", "network", "dns", "vault", "artifacts", "images", "aks"):
        assert any(n.startswith(f"{ENV}/{construct}/") for n in names), construct
    assert {r.token for r in azure_registered} == set(AZURE_TYPE_MAP)  # every mapped type used, none unmapped
    pools = [r for r in azure_registered
             if r.token == "azure:containerservice/kubernetesClusterNodePool:KubernetesClusterNodePool"]
    assert pools and all(r.inputs["nodeTaints"] == ["nvidia.com/gpu=true:NoSchedule"] for r in pools)


def test_parity_with_the_cdktf_synth(azure_cdktf_inv: Inventory, azure_registered: list[Registered]) -> None:
    pulumi_inv = inventory_of(azure_registered, ENV)
    assert len(azure_cdktf_inv) == len(pulumi_inv) > 90
    assert compare(azure_cdktf_inv, pulumi_inv) == []
    # The comparison really looks inside: the settings the posture is about are in both inventories.
    for inv in (azure_cdktf_inv, pulumi_inv):
        vault = inv[("azurerm_key_vault", "vault/vault")]
        assert (vault["purge_protection_enabled"], vault["rbac_authorization_enabled"],
                vault["public_network_access_enabled"]) == (True, True, False)
        account = inv[("azurerm_storage_account", "artifacts/account")]
        assert account["customer_managed_key"]["key_vault_key_id"] == "<ref:vault/key-artifacts>"
        assert (account["shared_access_key_enabled"], account["min_tls_version"],
                account["infrastructure_encryption_enabled"]) == (False, "TLS1_2", True)
        acr = inv[("azurerm_container_registry", "images/registry")]
        assert (acr["sku"], acr["admin_enabled"], acr["public_network_access_enabled"]) == ("Premium", False, False)
        aks = inv[("azurerm_kubernetes_cluster", "aks/cluster")]
        assert (aks["private_cluster_enabled"], aks["local_account_disabled"]) == (True, True)
        assert aks["azure_active_directory_role_based_access_control"]["azure_rbac_enabled"] is True
        assert inv[("azurerm_network_security_rule", "network/deny-all-serving-inbound")]["access"] == "Deny"
        assert inv[("azurerm_private_endpoint", "vault/endpoint")]["private_dns_zone_group"][
            "private_dns_zone_ids"] == ["<ref:dns/zone-vault>"]
        assert inv[("azurerm_monitor_diagnostic_setting", "vault/diag")]["log_analytics_workspace_id"] == \
            "<ref:logs/workspace>"
    assert pulumi_inv[(AZURE_PROVIDER, "azurerm")]["storage_use_azuread"] is True


# ---- weakenings: (Pulumi transform, CDKTF edit, resource, setting) ------------------------------





def _both(token: str, tf_type: str, path: str, **settings: Any) -> tuple[Any, Any]:
    return (transform(token, f"{ENV}/{path}", lambda p: p.update(settings)),
            edit(tf_type, path, lambda c: c.update(settings)))


STORAGE = ("azure:storage/account:Account", "azurerm_storage_account", "artifacts/account")
VAULT = ("azure:keyvault/keyVault:KeyVault", "azurerm_key_vault", "vault/vault")
WEAKENINGS = {
    "public storage": (*_both(*STORAGE, public_network_access_enabled=True),
                       "azurerm_storage_account artifacts/account", "public_network_access_enabled"),
    "storage with shared keys": (*_both(*STORAGE, shared_access_key_enabled=True),
                                 "azurerm_storage_account artifacts/account", "shared_access_key_enabled"),
    "storage on TLS 1.0": (*_both(*STORAGE, min_tls_version="TLS1_0"),
                           "azurerm_storage_account artifacts/account", "min_tls_version"),
    "key vault with public network access": (*_both(*VAULT, public_network_access_enabled=True),
                                             "azurerm_key_vault vault/vault", "public_network_access_enabled"),
    "key vault without purge protection": (*_both(*VAULT, purge_protection_enabled=False),
                                           "azurerm_key_vault vault/vault", "purge_protection_enabled"),
    "key vault outside the UAE": (*_both(*VAULT, location="westeurope"), "azurerm_key_vault vault/vault", "location"),
    "registry with an admin user": (
        *_both("azure:containerservice/registry:Registry", "azurerm_container_registry", "images/registry",
               admin_enabled=True),
        "azurerm_container_registry images/registry", "admin_enabled"),
    "cluster with local accounts": (
        *_both("azure:containerservice/kubernetesCluster:KubernetesCluster", "azurerm_kubernetes_cluster",
               "aks/cluster", local_account_disabled=False),
        "azurerm_kubernetes_cluster aks/cluster", "local_account_disabled"),
    "untainted GPU pool": (
        *_both("azure:containerservice/kubernetesClusterNodePool:KubernetesClusterNodePool",
               "azurerm_kubernetes_cluster_node_pool", "aks/pool-gpuinfer", node_taints=[]),
        "azurerm_kubernetes_cluster_node_pool aks/pool-gpuinfer", "node_taints"),
    "NSG rule allowing everything": (
        *_both("azure:network/networkSecurityRule:NetworkSecurityRule", "azurerm_network_security_rule",
               "network/deny-all-serving-inbound", access="Allow"),
        "azurerm_network_security_rule network/deny-all-serving-inbound", "access"),
}




@pytest.mark.parametrize("weakening", list(WEAKENINGS))
def test_a_weakened_pulumi_program_fails_parity(weakening: str, azure_cdktf_inv: Inventory) -> None:
    transform, _, resource, setting = WEAKENINGS[weakening]
    diffs = compare(azure_cdktf_inv, inventory_of(render_with_mocks(PROD_AZURE, transform=transform), ENV))
    d = named(diffs, resource, setting)
    assert d.cdktf != d.pulumi
    assert len(diffs) == 1, [str(x) for x in diffs]  # only what was changed, not noise


@pytest.mark.parametrize("weakening", list(WEAKENINGS))
def test_a_weakened_cdktf_synth_fails_parity(weakening: str, azure_cdktf_docs: list[dict[str, Any]],
                                             azure_registered: list[Registered]) -> None:
    _, edit, resource, setting = WEAKENINGS[weakening]
    docs = copy.deepcopy(azure_cdktf_docs)
    edit(docs)
    diffs = compare(cdktf_inventory(docs), inventory_of(azure_registered, ENV))
    named(diffs, resource, setting)
    assert len(diffs) == 1, [str(x) for x in diffs]


def test_a_storage_account_without_cmk_is_named(azure_cdktf_docs: list[dict[str, Any]],
                                                azure_registered: list[Registered]) -> None:
    docs = copy.deepcopy(azure_cdktf_docs)
    edit("azurerm_storage_account", "artifacts/account", lambda c: c.pop("customer_managed_key"))(docs)
    diffs = compare(cdktf_inventory(docs), inventory_of(azure_registered, ENV))
    assert {(d.resource, d.setting, d.cdktf) for d in diffs} == {
        ("azurerm_storage_account artifacts/account", "customer_managed_key.key_vault_key_id", "<unset>"),
        ("azurerm_storage_account artifacts/account", "customer_managed_key.user_assigned_identity_id", "<unset>"),
    }


def test_a_private_endpoint_missing_on_one_side_is_named(azure_cdktf_docs: list[dict[str, Any]],
                                                         azure_registered: list[Registered]) -> None:
    docs = copy.deepcopy(azure_cdktf_docs)
    for doc in docs:
        endpoints = doc.get("resource", {}).get("azurerm_private_endpoint", {})
        for name in [n for n, c in endpoints.items() if c["//"]["metadata"]["path"].endswith("vault/endpoint")]:
            del endpoints[name]
    diffs = compare(cdktf_inventory(docs), inventory_of(azure_registered, ENV))
    assert [str(d) for d in diffs] == [
        "azurerm_private_endpoint vault/endpoint: (resource): cdktf='missing' pulumi='present'"]


# ---- the policy gate over the Pulumi resource list ----------------------------------------------

def test_the_azure_program_passes_the_gate(azure_registered: list[Registered]) -> None:
    report = check_documents(terraform_documents(azure_registered), blueprint=str(PROD_AZURE))
    assert report.passed, report.summary()
    assert report.stacks == [ENV]


def test_an_azure_program_outside_the_uae_is_refused() -> None:
    transform, _ = _both(*VAULT, location="westeurope")
    report = check_documents(terraform_documents(render_with_mocks(PROD_AZURE, transform=transform)))
    assert not report.passed
    hits = [f for f in report.unexplained if "westeurope" in f.message]
    assert {(f.id, f.resource) for f in hits} == {("UAE-RES-004", f"azurerm_key_vault.{ENV}/vault/vault")}, \
        report.summary()


def test_an_azure_program_with_public_storage_is_refused() -> None:
    transform, _ = _both(*STORAGE, public_network_access_enabled=True)
    report = check_documents(terraform_documents(render_with_mocks(PROD_AZURE, transform=transform)))
    assert not report.passed
    hits = [f for f in report.unexplained if f.id == "UAE-AZ-PUB-001"]
    assert {f.resource for f in hits} == {f"azurerm_storage_account.{ENV}/artifacts/account"}, report.summary()
    assert any("public_network_access_enabled" in f.message for f in hits)


def test_the_azure_stack_settings_name_the_azure_blueprint() -> None:
    import yaml

    from blueprints import load_blueprint
    from tests.pulumi.conftest import REPO

    stack = yaml.safe_load((REPO / "Pulumi.uae-prod-azure.yaml").read_text())
    bp = load_blueprint(REPO / stack["config"]["sovereign-mlops:blueprint"])
    assert [(e.name, str(e.cloud)) for e in bp.environments] == [(ENV, "azure")]


def test_a_multicloud_blueprint_renders_both_clouds_in_parity_and_passes_the_gate(multicloud_synth: Any) -> None:
    blueprint = REPO / "blueprints" / "uae-multicloud.yaml"
    docs = terraform_documents(render_with_mocks(blueprint))
    assert sorted(docs) == ["uae-mc-aws", "uae-mc-azure"]
    assert set(docs["uae-mc-aws"]["provider"]) == {"aws"} and set(docs["uae-mc-azure"]["provider"]) == {"azurerm"}
    for env, doc in docs.items():
        synthesized = [multicloud_synth.docs[s.name] for s in multicloud_synth.stacks if s.environment == env]
        assert synthesized, env
        assert compare(cdktf_inventory(synthesized), pulumi_inventory(doc, env)) == [], env
    report = check_documents(docs, blueprint=str(blueprint))
    assert report.passed, report.summary()
