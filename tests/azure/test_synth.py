"""Security properties of the synthesized Azure stacks, asserted on the Terraform JSON."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from blueprints import load_environment
from blueprints.schema import SegmentName

REPO = Path(__file__).resolve().parents[2]
ENV = load_environment(REPO / "blueprints/uae-prod-azure.yaml")
P = ENV.name
LAYERS = ["network", "security", "registry", "cluster"]


def one(resources: dict) -> dict:
    assert len(resources) == 1, list(resources)
    return next(iter(resources.values()))


def test_one_stack_per_layer_with_private_azuread_state(azure_synth):
    assert [s.name for s in azure_synth.stacks] == [f"{P}-{layer}" for layer in LAYERS]
    assert [s.cloud for s in azure_synth.stacks] == ["azure"] * 4
    for layer in LAYERS:
        doc = azure_synth.doc(f"{P}-{layer}")
        backend = doc["terraform"]["backend"]["azurerm"]
        assert backend["storage_account_name"] == ENV.azure.state_storage_account
        assert backend["container_name"] == "tfstate"
        assert backend["use_azuread_auth"] is True
        assert backend["key"] == f"sovereign-mlops/{P}/{layer}.tfstate"
        # Only the azurerm provider: nothing else needs downloading, nothing else can leak data.
        assert set(doc["provider"]) == {"azurerm"}
        assert doc["provider"]["azurerm"][0]["storage_use_azuread"] is True


def test_everything_is_placed_in_uae_north(azure_synth):
    located = 0
    for doc in azure_synth.docs.values():
        for rtype, named in doc.get("resource", {}).items():
            for cfg in named.values():
                if "location" in cfg:
                    located += 1
                    assert cfg["location"] == "uaenorth", rtype
    assert located > 10
    (acr,) = azure_synth.resources("azurerm_container_registry").values()
    assert [g["location"] for g in acr["georeplications"]] == ["uaecentral"]  # the other UAE region


def test_one_subnet_and_nsg_per_segment_denying_all_but_declared_flows(azure_synth):
    net = f"{P}-network"
    subnets = azure_synth.resources("azurerm_subnet", net)
    assert sorted(s["name"] for s in subnets.values()) == sorted(
        f"snet-{s.name}" for s in ENV.network.segments
    )
    for s in subnets.values():
        assert s["default_outbound_access_enabled"] is False
    nsgs = azure_synth.resources("azurerm_network_security_group", net)
    assert len(nsgs) == len(ENV.network.segments)
    assert len(azure_synth.resources("azurerm_subnet_network_security_group_association", net)) == len(nsgs)
    rules = list(azure_synth.resources("azurerm_network_security_rule", net).values())
    by_nsg: dict[str, list[dict]] = {}
    for r in rules:
        by_nsg.setdefault(r["network_security_group_name"], []).append(r)
    assert len(by_nsg) == len(nsgs)
    cidrs = {str(s.cidr) for s in ENV.network.segments} | {str(ENV.azure.aks.pod_cidr)}
    for nsg, nsg_rules in by_nsg.items():
        for direction in ("Inbound", "Outbound"):
            deny = [r for r in nsg_rules if r["direction"] == direction and r["access"] == "Deny"]
            assert len(deny) == 1, (nsg, direction)
            d = deny[0]
            assert d["priority"] == 4096 and d["protocol"] == "*"
            assert d["source_address_prefix"] == d["destination_address_prefix"] == "*"
            allows = [r for r in nsg_rules if r["direction"] == direction and r["access"] == "Allow"]
            assert all(r["priority"] < 4096 for r in allows)
            assert len({r["priority"] for r in allows}) == len(allows), "priorities must be unique"
        for r in nsg_rules:
            if r["access"] == "Allow":
                assert r["source_address_prefix"] in cidrs, r  # never *, Internet or 0.0.0.0/0
                assert r["destination_address_prefix"] in cidrs | {"Internet"}
                if r["destination_address_prefix"] == "Internet":
                    assert r["direction"] == "Outbound"
    # each declared flow between segments is allowed at both ends
    cidr = {s.name: str(s.cidr) for s in ENV.network.segments}
    for flow in ENV.network.flows:
        ports = sorted(str(p) for p in flow.ports)
        out = [
            r
            for r in rules
            if r["direction"] == "Outbound"
            and r["source_address_prefix"] == cidr[flow.source]
            and sorted(r.get("destination_port_ranges") or []) == ports
        ]
        assert out, flow
        if flow.to is not SegmentName.egress:
            inbound = [
                r
                for r in rules
                if r["direction"] == "Inbound"
                and r["source_address_prefix"] == cidr[flow.source]
                and r["destination_address_prefix"] == cidr[flow.to]
            ]
            assert inbound and f"nsg-{flow.to}_" in inbound[0]["network_security_group_name"]


def test_only_route_out_is_the_egress_firewall(azure_synth):
    rt = one(azure_synth.resources("azurerm_route_table", f"{P}-network"))
    assert rt["bgp_route_propagation_enabled"] is False
    (route,) = rt["route"]
    assert route["address_prefix"] == "0.0.0.0/0" and route["next_hop_type"] == "VirtualAppliance"
    assert route["next_hop_in_ip_address"] == str(ENV.azure.egress_firewall_ip)
    assert not azure_synth.resources("azurerm_public_ip")


def test_private_endpoints_and_dns_zones_for_vault_registry_and_blob(azure_synth):
    zones = {z["name"] for z in azure_synth.resources("azurerm_private_dns_zone").values()}
    assert zones == {
        "privatelink.vaultcore.azure.net",
        "privatelink.azurecr.io",
        "privatelink.blob.core.windows.net",
    }
    assert len(azure_synth.resources("azurerm_private_dns_zone_virtual_network_link")) == 3
    pes = azure_synth.resources("azurerm_private_endpoint")
    subs = sorted(pe["private_service_connection"]["subresource_names"][0] for pe in pes.values())
    assert subs == ["blob", "registry", "vault"]
    for pe in pes.values():
        assert "subnet-endpoints" in pe["subnet_id"]
        assert pe["private_dns_zone_group"]["private_dns_zone_ids"]


def test_key_vault_and_keys(azure_synth):
    kv = one(azure_synth.resources("azurerm_key_vault"))
    assert kv["purge_protection_enabled"] is True and kv["rbac_authorization_enabled"] is True
    assert kv["public_network_access_enabled"] is False and kv["sku_name"] == "premium"
    assert kv["network_acls"]["default_action"] == "Deny"
    keys = {k["name"]: k for k in azure_synth.resources("azurerm_key_vault_key").values()}
    assert set(keys) == {"artifacts-key", "cluster-key", "logs-key", "signing-key"}
    for name in ("artifacts-key", "cluster-key", "logs-key"):
        assert keys[name]["key_type"] == "RSA-HSM" and keys[name]["key_size"] >= 3072
        assert keys[name]["rotation_policy"]["automatic"]["time_after_creation"]
    sign = keys["signing-key"]
    assert (
        sign["key_type"] == "EC-HSM"
        and sign["curve"] == "P-256"
        and sorted(sign["key_opts"]) == ["sign", "verify"]
    )


def test_artifact_storage(azure_synth):
    sa = one(azure_synth.resources("azurerm_storage_account"))
    assert sa["name"] == ENV.azure.storage_account
    assert sa["public_network_access_enabled"] is False
    assert sa["allow_nested_items_to_be_public"] is False
    assert sa["shared_access_key_enabled"] is False
    assert sa["min_tls_version"] == "TLS1_2" and sa["https_traffic_only_enabled"] is True
    assert sa["infrastructure_encryption_enabled"] is True
    assert sa["account_replication_type"] == "GZRS"  # paired region UAE Central: in-country
    assert sa["identity"]["type"] == "UserAssigned"
    cmk = sa["customer_managed_key"]
    assert (
        "key-artifacts" in cmk["key_vault_key_id"]
        and cmk["user_assigned_identity_id"] == sa["identity"]["identity_ids"][0]
    )
    assert sa["blob_properties"]["versioning_enabled"] is True
    assert sa["blob_properties"]["delete_retention_policy"]["days"] >= 7
    containers = {c["name"]: c for c in azure_synth.resources("azurerm_storage_container").values()}
    assert set(containers) == {"model-artifacts", "audit-logs"}
    assert all(c["container_access_type"] == "private" for c in containers.values())
    assert containers["audit-logs"]["default_encryption_scope"]
    scope = one(azure_synth.resources("azurerm_storage_encryption_scope"))
    assert "key-logs" in scope["key_vault_key_id"] and scope["infrastructure_encryption_required"] is True
    worm = one(azure_synth.resources("azurerm_storage_container_immutability_policy"))
    assert worm["immutability_period_in_days"] == ENV.registries.object_lock_days


def test_container_registry(azure_synth):
    acr = one(azure_synth.resources("azurerm_container_registry"))
    assert acr["sku"] == "Premium" and acr["admin_enabled"] is False
    assert acr["public_network_access_enabled"] is False and acr["anonymous_pull_enabled"] is False
    assert acr["export_policy_enabled"] is False
    (enc,) = acr["encryption"]
    assert "key-artifacts" in enc["key_vault_key_id"] and enc["identity_client_id"]


def test_private_aks_with_entra_rbac_workload_identity_policy_and_kms(azure_synth):
    aks = one(azure_synth.resources("azurerm_kubernetes_cluster"))
    assert aks["private_cluster_enabled"] is True and aks["private_cluster_public_fqdn_enabled"] is False
    assert aks["local_account_disabled"] is True
    rbac = aks["azure_active_directory_role_based_access_control"]
    assert (
        rbac["azure_rbac_enabled"] is True
        and rbac["admin_group_object_ids"] == ENV.azure.aks.admin_group_object_ids
    )
    assert aks["workload_identity_enabled"] is True and aks["oidc_issuer_enabled"] is True
    assert aks["azure_policy_enabled"] is True
    kms = aks["key_management_service"]
    assert "key-cluster" in kms["key_vault_key_id"] and kms["key_vault_network_access"] == "Private"
    assert "disk_encryption_set" in aks["disk_encryption_set_id"]
    assert aks["network_profile"]["outbound_type"] == "userDefinedRouting"
    pool = aks["default_node_pool"]
    assert pool["only_critical_addons_enabled"] is True and pool["host_encryption_enabled"] is True
    assert pool["vm_size"] == ENV.cluster.system_pool.instance_type


def test_gpu_pools_carry_the_taint_and_labels(azure_synth):
    pools = {p["name"]: p for p in azure_synth.resources("azurerm_kubernetes_cluster_node_pool").values()}
    assert set(pools) == {p.name for p in ENV.cluster.gpu_pools}
    for spec in ENV.cluster.gpu_pools:
        p = pools[spec.name]
        assert p["vm_size"] == spec.instance_type
        assert "nvidia.com/gpu=true:NoSchedule" in p["node_taints"]
        assert spec.labels.items() <= p["node_labels"].items()
        assert (p["min_count"], p["max_count"]) == (spec.min_size, spec.max_size)
        assert p["host_encryption_enabled"] is True and p["node_public_ip_enabled"] is False


DIAGNOSABLE = [
    "azurerm_virtual_network",
    "azurerm_network_security_group",
    "azurerm_log_analytics_workspace",
    "azurerm_key_vault",
    "azurerm_storage_account",
    "azurerm_container_registry",
    "azurerm_kubernetes_cluster",
]


@pytest.mark.parametrize("rtype", DIAGNOSABLE)
def test_diagnostic_settings_on_every_resource_that_has_them(azure_synth, rtype):
    for stack, doc in azure_synth.docs.items():
        targets = [
            d["target_resource_id"]
            for d in doc.get("resource", {}).get("azurerm_monitor_diagnostic_setting", {}).values()
        ]
        for name in doc.get("resource", {}).get(rtype, {}):
            assert any(t == f"${{{rtype}.{name}.id}}" for t in targets), (
                f"{stack}: {rtype}.{name} has no diagnostics"
            )
    for d in azure_synth.resources("azurerm_monitor_diagnostic_setting").values():
        assert "log_analytics_workspace" in d["log_analytics_workspace_id"]
    blob = [
        d
        for d in azure_synth.resources("azurerm_monitor_diagnostic_setting").values()
        if d["target_resource_id"].endswith("/blobServices/default")
    ]
    assert blob and blob[0]["enabled_log"] == [{"category_group": "allLogs"}]


def test_log_analytics_is_private(azure_synth):
    ws = one(azure_synth.resources("azurerm_log_analytics_workspace"))
    assert ws["internet_ingestion_enabled"] is False and ws["internet_query_enabled"] is False
    assert ws["local_authentication_enabled"] is False and ws["retention_in_days"] >= 365


def test_segment_cidrs_are_inside_the_vnet(azure_synth):
    vnet = one(azure_synth.resources("azurerm_virtual_network"))
    space = ipaddress.ip_network(vnet["address_space"][0])
    for s in azure_synth.resources("azurerm_subnet").values():
        assert ipaddress.ip_network(s["address_prefixes"][0]).subnet_of(space)
