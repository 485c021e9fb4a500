"""Render a blueprint's Azure environments as Pulumi resources, layer for layer as
stacks/azure/build.py does with CDKTF: network -> security -> registry -> cluster."""

from __future__ import annotations

from typing import Any, cast

import pulumi
import pulumi_azure as azure

from blueprints.schema import Environment, KeyPurpose, SegmentName
from modules.azure.cluster import ClusterSpec
from modules.azure.common import merged_tags
from modules.azure.keyvault import KeyVaultSpec
from modules.azure.network import NetworkSpec
from modules.azure.registry import RegistrySpec
from modules.azure.storage import StorageSpec
from stacks.azure.base import azure_settings
from stacks.azure.build import NODE_SEGMENT, _platform_flows
from stacks.pulumi.azure_components import (
    ArtifactStorage,
    ImageRegistry,
    LogWorkspace,
    PrivateAks,
    PrivateDns,
    Vault,
    VirtualNetwork,
)


def _s(value: Any) -> str:
    # The modules/azure specs type their ids as str (CDKTF tokens are strings); here they are Outputs.
    return cast(str, value)


def render_azure_environment(env: Environment) -> azure.Provider:
    """Every resource of one Azure environment, under an explicit azurerm provider."""
    az = azure_settings(env)
    tags = env.tag_map()
    loc = env.region
    rg_name = az.resource_group
    provider = azure.Provider(
        f"{env.name}/azurerm", subscription_id=az.subscription_id, tenant_id=az.tenant_id,
        storage_use_azuread=True, resource_provider_registrations="none",
        features={"key_vault": {"purge_soft_delete_on_destroy": False, "purge_soft_deleted_keys_on_destroy": False,
                                "recover_soft_deleted_key_vaults": True, "recover_soft_deleted_keys": True},
                  "resource_group": {"prevent_deletion_if_contains_resources": True}})
    opts = pulumi.ResourceOptions(provider=provider)
    n = env.name

    # -- network ----------------------------------------------------------------------------------
    rg = azure.core.ResourceGroup(f"{n}/rg/group", name=rg_name, location=loc, tags=merged_tags(tags), opts=opts)
    logs = LogWorkspace(f"{n}/logs", ws_name=f"log-{n}", location=loc, resource_group=rg.name,
                        retention_days=env.logging.retention_days, tags=tags, opts=opts)
    ws = logs.id
    network = VirtualNetwork(f"{n}/network", spec=NetworkSpec(
        name=f"vnet-{n}", location=loc, resource_group=rg_name, network=env.network,
        egress_next_hop=str(az.egress_firewall_ip),
        routed_segments=tuple(s.name for s in env.network.segments if s.name is not SegmentName.egress),
        platform_flows=_platform_flows(env)), resource_group=rg.name, tags=tags, workspace_id=ws, opts=opts)
    dns = PrivateDns(f"{n}/dns", resource_group=rg.name, vnet_id=network.id, tags=tags, opts=opts)
    endpoints = network.subnet_ids[SegmentName.endpoints]

    # -- security ---------------------------------------------------------------------------------
    cmk_id = azure.authorization.UserAssignedIdentity(f"{n}/cmk-identity", name=f"id-{n}-cmk", location=loc,
                                                      resource_group_name=rg_name, tags=tags, opts=opts)
    aks_id = azure.authorization.UserAssignedIdentity(f"{n}/aks-identity", name=f"id-{n}-aks", location=loc,
                                                      resource_group_name=rg_name, tags=tags, opts=opts)
    caller = azure.core.get_client_config_output(opts=pulumi.InvokeOutputOptions(provider=provider))
    vault = Vault(f"{n}/vault", spec=KeyVaultSpec(
        name=az.key_vault, location=loc, resource_group=rg_name, tenant_id=az.tenant_id,
        purposes=tuple(env.kms.purposes), soft_delete_retention_days=max(env.kms.deletion_window_days, 7)),
        subnet_id=endpoints, zone_id=dns.zone_ids["vault"], workspace_id=ws, caller_object_id=caller.object_id,
        tags=tags, opts=opts)

    def grant(name: str, scope: Any, role: str, principal: Any, description: str,
              depends_on: list[pulumi.Resource] | None = None) -> azure.authorization.Assignment:
        return azure.authorization.Assignment(
            f"{n}/{name}", scope=scope, role_definition_name=role, principal_id=principal,
            principal_type="ServicePrincipal", description=description,
            opts=pulumi.ResourceOptions(provider=provider, depends_on=depends_on))

    cmk_grant = grant("cmk-crypto", vault.id, "Key Vault Crypto Service Encryption User", cmk_id.principal_id,
                      "Storage, ACR and disk encryption wrap their data keys with the CMK")
    grant("aks-kms", vault.id, "Key Vault Crypto User", aks_id.principal_id,
          "AKS KMS v2 encrypts etcd secrets with the cluster key")
    des = azure.compute.DiskEncryptionSet(
        f"{n}/disks", name=f"des-{n}", location=loc, resource_group_name=rg_name,
        key_vault_key_id=vault.versionless_key_ids[KeyPurpose.cluster], auto_key_rotation_enabled=True,
        encryption_type="EncryptionAtRestWithPlatformAndCustomerKeys",
        identity={"type": "UserAssigned", "identity_ids": [cmk_id.id]}, tags=tags,
        opts=pulumi.ResourceOptions(provider=provider, depends_on=[cmk_grant]))

    # -- registry ---------------------------------------------------------------------------------
    artifacts = vault.versionless_key_ids[KeyPurpose.artifacts]
    ArtifactStorage(f"{n}/artifacts", spec=StorageSpec(
        name=az.storage_account, location=loc, resource_group=rg_name, cmk_identity_id=_s(cmk_id.id),
        model_container=env.registries.model_bucket, log_container=env.registries.log_bucket,
        immutability_days=env.registries.object_lock_days),
        kms_key=artifacts, logs_key=vault.versionless_key_ids.get(KeyPurpose.logs), subnet_id=endpoints,
        zone_id=dns.zone_ids["blob"], workspace_id=ws, tags=tags, opts=opts)
    acr = ImageRegistry(f"{n}/images", spec=RegistrySpec(
        name=az.container_registry, location=loc, resource_group=rg_name, cmk_identity_id=_s(cmk_id.id),
        cmk_identity_client_id=_s(cmk_id.client_id)),
        kms_key=artifacts, subnet_id=endpoints, zone_id=dns.zone_ids["registry"], workspace_id=ws, tags=tags,
        opts=opts)

    # -- cluster ----------------------------------------------------------------------------------
    node_subnet = network.subnet_ids[NODE_SEGMENT]
    net_grants = [
        grant(f"aks-network-{i}", target, "Network Contributor", aks_id.principal_id,
              "AKS joins nodes to the subnet and reads the route table (userDefinedRouting)")
        for i, target in enumerate([node_subnet, network.route_table_id]) if target is not None
    ]
    aks = PrivateAks(f"{n}/aks", spec=ClusterSpec(
        name=env.cluster.name, location=loc, resource_group=rg_name, tenant_id=az.tenant_id,
        kubernetes_version=env.cluster.kubernetes_version, system_pool=env.cluster.system_pool,
        gpu_pools=tuple(env.cluster.gpu_pools), aks=az.aks, node_subnet_id=_s(node_subnet),
        identity_id=_s(aks_id.id), disk_encryption_set_id=_s(des.id)),
        kms_key=vault.key_ids[KeyPurpose.cluster], workspace_id=ws, tags=tags,
        opts=pulumi.ResourceOptions(provider=provider, depends_on=list(net_grants)))
    grant("kubelet-acr-pull", acr.id, "AcrPull", aks.cluster.kubelet_identity.object_id,
          "nodes pull images from the private registry (no admin user, no pull secrets)")
    pulumi.export(f"{n}/oidc_issuer_url", aks.cluster.oidc_issuer_url)
    return provider
