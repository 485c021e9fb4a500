"""Reusable Pulumi ComponentResources for an Azure environment of a blueprint: resource for resource
what ``modules/azure`` renders with CDKTF, through the bridged ``pulumi-azure`` provider (the same
azurerm Terraform provider, so each Pulumi type is one ``azurerm_*`` type with the same settings).

The flat security settings (public access, purge protection, RBAC, TLS, shared keys, private
cluster, node hardening...) come from ``modules/azure/posture.py``, which the CDKTF constructs read
too; the wiring and the blocks whose names the bridge changes are written here and held equal to
the CDKTF side by ``tests/pulumi/test_parity_azure.py``, which compares every resource and every
setting of the two (docs/pulumi.md).
Each child resource is named after the CDKTF construct path it mirrors (``<env>/vault/vault``).
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_azure as azure

from blueprints.schema import KeyPurpose, NodePool, SegmentName
from modules.azure.cluster import ClusterSpec, gpu_taints
from modules.azure.common import PAIRED_REGION, is_zonal, merged_tags, zones
from modules.azure.keyvault import CMK_KEY_SIZE, KeyVaultSpec
from modules.azure.network import DENY_ALL_PRIORITY, NetworkSpec
from modules.azure.posture import (
    AKS_CLUSTER,
    AKS_NETWORK,
    KEY_VAULT,
    KEY_VAULT_NETWORK_ACLS,
    LOG_WORKSPACE,
    NODE_POOL,
    REGISTRY,
    STORAGE_ACCOUNT,
    STORAGE_SAS_POLICY,
    SUBNET,
)
from modules.azure.private_link import PRIVATE_DNS_ZONES
from modules.azure.registry import RegistrySpec
from modules.azure.storage import StorageSpec
from stacks.pulumi.component import Component

TYPE_PREFIX = "sovereign-mlops:azure"
_FIRST_PRIORITY = 100
_MAX_PODS = 50

Out = pulumi.Input[str]


class _Component(Component):
    type_prefix = TYPE_PREFIX

    def diagnostics(self, id: str, target: Out, workspace_id: Out | None, *, logs: bool = True,
                    metrics: bool = True) -> None:
        """Every log category (allLogs) and metric to the workspace, as modules/azure/common.py."""
        if workspace_id is None:
            return
        azure.monitoring.DiagnosticSetting(
            self.child(id), name="to-log-analytics", target_resource_id=target,
            log_analytics_workspace_id=workspace_id,
            enabled_logs=[{"category_group": "allLogs"}] if logs else None,
            enabled_metrics=[{"category": "AllMetrics"}] if metrics else None,
            opts=self.opts())

    def harden(self, *, resource_id: Out, name: str, location: str, resource_group: Out, subresource: str,
               subnet_id: Out, zone_id: Out, workspace_id: Out, tags: dict[str, str], logs: bool = True) -> None:
        """A diagnostic setting (``diag``) and the private endpoint (``endpoint``), as
        ``modules.azure.private_link.harden`` gives every private data service."""
        self.diagnostics("diag", resource_id, workspace_id, logs=logs)
        azure.privatelink.Endpoint(
            self.child("endpoint"), name=f"pe-{name}-{subresource}", location=location,
            resource_group_name=resource_group, subnet_id=subnet_id,
            private_service_connection={"name": f"psc-{name}-{subresource}",
                                        "private_connection_resource_id": resource_id,
                                        "subresource_names": [subresource], "is_manual_connection": False},
            private_dns_zone_group={"name": "default", "private_dns_zone_ids": [zone_id]},
            tags=merged_tags(tags), opts=self.opts())


class LogWorkspace(_Component):
    """Log Analytics with public ingestion/query and shared keys off; it audits its own queries."""

    def __init__(self, name: str, *, ws_name: str, location: str, resource_group: Out, retention_days: int,
                 tags: dict[str, str], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("LogWorkspace", name, opts)
        self.workspace = azure.operationalinsights.AnalyticsWorkspace(
            self.child("workspace"), name=ws_name, location=location, resource_group_name=resource_group,
            retention_in_days=min(max(retention_days, 365), 730), **LOG_WORKSPACE,
            tags=merged_tags(tags), opts=self.opts())
        self.id = self.workspace.id
        self.diagnostics("diag", self.id, self.id)
        self.register_outputs({})


class VirtualNetwork(_Component):
    """One subnet per segment behind its own NSG: declared flows allowed, everything else denied
    (priority 4096 both ways); the routed segments leave through the egress next hop only."""

    def __init__(self, name: str, *, spec: NetworkSpec, resource_group: Out, tags: dict[str, str],
                 workspace_id: Out, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("VirtualNetwork", name, opts)
        net = spec.network
        tags = merged_tags(tags)
        self._rg = resource_group
        self.vnet = azure.network.VirtualNetwork(
            self.child("vnet"), name=spec.name, location=spec.location, resource_group_name=resource_group,
            address_spaces=[str(net.vpc_cidr)], tags=tags, opts=self.opts())
        self.id = self.vnet.id
        self.diagnostics("vnet-diag", self.vnet.id, workspace_id)
        self.subnet_ids: dict[SegmentName, pulumi.Output[str]] = {}
        self._nsg_names: dict[SegmentName, pulumi.Output[str]] = {}
        for seg in net.segments:
            s = str(seg.name)
            subnet = azure.network.Subnet(
                self.child(f"subnet-{s}"), name=f"snet-{s}", resource_group_name=resource_group,
                virtual_network_name=self.vnet.name, address_prefixes=[str(seg.cidr)],
                **SUBNET,
                opts=self.opts())
            nsg = azure.network.NetworkSecurityGroup(
                self.child(f"nsg-{s}"), name=f"nsg-{spec.name}-{s}", location=spec.location,
                resource_group_name=resource_group, tags=tags, opts=self.opts())
            azure.network.SubnetNetworkSecurityGroupAssociation(
                self.child(f"nsg-assoc-{s}"), subnet_id=subnet.id, network_security_group_id=nsg.id,
                opts=self.opts())
            self.diagnostics(f"nsg-diag-{s}", nsg.id, workspace_id, metrics=False)
            self.subnet_ids[seg.name] = subnet.id
            self._nsg_names[seg.name] = nsg.name
        cidr = {s.name: str(s.cidr) for s in net.segments}
        self._next: dict[tuple[SegmentName, str], int] = {}
        for i, flow in enumerate(net.flows):
            rule = f"flow-{i}-{flow.source}-to-{flow.to}"
            protocol = "Tcp" if flow.protocol == "tcp" else "Udp"
            desc = flow.description or f"blueprint flow {flow.source} -> {flow.to}"
            ports = [str(p) for p in flow.ports]
            out_dst = "Internet" if flow.to is SegmentName.egress else cidr[flow.to]
            self._rule(flow.source, "Outbound", rule, cidr[flow.source], out_dst, ports, protocol, desc)
            if flow.to is not SegmentName.egress:
                self._rule(flow.to, "Inbound", rule, cidr[flow.source], cidr[flow.to], ports, protocol, desc)
        for pf in spec.platform_flows:
            for direction in ("Inbound", "Outbound"):
                self._rule(pf.segment, direction, pf.name, pf.source, pf.destination, list(pf.ports),
                           pf.protocol, pf.description)
        for seg in net.segments:
            for direction in ("Inbound", "Outbound"):
                azure.network.NetworkSecurityRule(
                    self.child(f"deny-all-{seg.name}-{direction.lower()}"), name=f"deny-all-{direction.lower()}",
                    resource_group_name=resource_group, network_security_group_name=self._nsg_names[seg.name],
                    priority=DENY_ALL_PRIORITY, direction=direction, access="Deny", protocol="*",
                    source_address_prefix="*", source_port_range="*", destination_address_prefix="*",
                    destination_port_range="*",
                    description="zero trust: everything not declared in the blueprint is denied", opts=self.opts())
        self.route_table_id: pulumi.Output[str] | None = None
        if spec.egress_next_hop:
            rt = azure.network.RouteTable(
                self.child("routes"), name=f"rt-{spec.name}-egress", location=spec.location,
                resource_group_name=resource_group, bgp_route_propagation_enabled=False,
                routes=[{"name": "default-via-firewall", "address_prefix": "0.0.0.0/0",
                         "next_hop_type": "VirtualAppliance", "next_hop_in_ip_address": spec.egress_next_hop}],
                tags=tags, opts=self.opts())
            self.route_table_id = rt.id
            for seg_name in spec.routed_segments:
                if seg_name in self.subnet_ids:
                    azure.network.SubnetRouteTableAssociation(
                        self.child(f"routes-{seg_name}"), subnet_id=self.subnet_ids[seg_name], route_table_id=rt.id,
                        opts=self.opts())
        self.register_outputs({})

    def _rule(self, segment: SegmentName, direction: str, name: str, src: str, dst: str, ports: list[str],
              protocol: str, description: str) -> None:
        key = (segment, direction)
        priority = self._next.get(key, _FIRST_PRIORITY)
        self._next[key] = priority + 10
        azure.network.NetworkSecurityRule(
            self.child(f"rule-{segment}-{direction.lower()}-{name}"), name=name, resource_group_name=self._rg,
            network_security_group_name=self._nsg_names[segment], priority=priority, direction=direction,
            access="Allow", protocol=protocol, source_address_prefix=src, source_port_range="*",
            destination_address_prefix=dst,
            destination_port_range="*" if ports == ["*"] else None,
            destination_port_ranges=None if ports == ["*"] else ports,
            description=description[:140], opts=self.opts())


class PrivateDns(_Component):
    """The privatelink zones of Key Vault, ACR and Blob, linked to the VNet."""

    def __init__(self, name: str, *, resource_group: Out, vnet_id: Out, tags: dict[str, str],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("PrivateDns", name, opts)
        self.zone_ids: dict[str, pulumi.Output[str]] = {}
        for sub, zone_name in PRIVATE_DNS_ZONES.items():
            zone = azure.privatedns.Zone(self.child(f"zone-{sub}"), name=zone_name,
                                         resource_group_name=resource_group, tags=merged_tags(tags), opts=self.opts())
            azure.privatedns.ZoneVirtualNetworkLink(
                self.child(f"link-{sub}"), name=f"link-{sub}", resource_group_name=resource_group,
                private_dns_zone_name=zone.name, virtual_network_id=vnet_id, registration_enabled=False,
                tags=merged_tags(tags), opts=self.opts())
            self.zone_ids[sub] = zone.id
        self.register_outputs({})


class Vault(_Component):
    """Premium (HSM) Key Vault: purge protection, Azure RBAC, private only; one key per purpose."""

    def __init__(self, name: str, *, spec: KeyVaultSpec, subnet_id: Out, zone_id: Out, workspace_id: Out,
                 caller_object_id: Out, tags: dict[str, str], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("Vault", name, opts)
        self.vault = azure.keyvault.KeyVault(
            self.child("vault"), name=spec.name, location=spec.location, resource_group_name=spec.resource_group,
            tenant_id=spec.tenant_id, soft_delete_retention_days=min(max(spec.soft_delete_retention_days, 7), 90),
            **KEY_VAULT, network_acls=dict(KEY_VAULT_NETWORK_ACLS), tags=merged_tags(tags),
            opts=self.opts())
        self.id = self.vault.id
        self.harden(resource_id=self.id, name=spec.name, location=spec.location, resource_group=spec.resource_group,
                    subresource="vault", subnet_id=subnet_id, zone_id=zone_id, workspace_id=workspace_id, tags=tags)
        admin = azure.authorization.Assignment(
            self.child("terraform-crypto-officer"), scope=self.id, role_definition_name="Key Vault Crypto Officer",
            principal_id=spec.administrator_object_id or caller_object_id,
            description="lets the identity that applies this stack create and rotate the keys", opts=self.opts())
        self.key_ids: dict[KeyPurpose, pulumi.Output[str]] = {}
        self.versionless_key_ids: dict[KeyPurpose, pulumi.Output[str]] = {}
        for purpose in spec.purposes:
            signing = purpose is KeyPurpose.signing
            key = azure.keyvault.Key(
                self.child(f"key-{purpose}"), name=f"{purpose}-key", key_vault_id=self.id,
                key_type="EC-HSM" if signing else "RSA-HSM", curve="P-256" if signing else None,
                key_size=None if signing else CMK_KEY_SIZE,
                key_opts=["sign", "verify"] if signing else ["wrapKey", "unwrapKey"],
                rotation_policy={"expire_after": "P730D", "notify_before_expiry": "P30D",
                                 "automatic": {"time_after_creation": "P365D"}},
                tags=merged_tags(tags, Purpose=str(purpose)), opts=self.opts(depends_on=[admin]))
            self.key_ids[purpose] = key.id
            self.versionless_key_ids[purpose] = key.versionless_id
        self.register_outputs({})


class ArtifactStorage(_Component):
    """Private, Entra-ID-only, double-encrypted (CMK) storage; the log container is WORM."""

    def __init__(self, name: str, *, spec: StorageSpec, kms_key: Out, logs_key: Out | None, subnet_id: Out,
                 zone_id: Out, workspace_id: Out, tags: dict[str, str],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ArtifactStorage", name, opts)
        days = min(max(spec.soft_delete_days, 7), 365)
        self.account = azure.storage.Account(
            self.child("account"), name=spec.name, location=spec.location, resource_group_name=spec.resource_group,
            account_replication_type="GZRS" if is_zonal(spec.location) else "GRS", **STORAGE_ACCOUNT,
            identity={"type": "UserAssigned", "identity_ids": [spec.cmk_identity_id]},
            customer_managed_key={"key_vault_key_id": kms_key, "user_assigned_identity_id": spec.cmk_identity_id},
            network_rules={"default_action": "Deny", "bypasses": ["AzureServices"]},
            sas_policy=dict(STORAGE_SAS_POLICY),
            blob_properties={"versioning_enabled": True, "change_feed_enabled": True,
                             "change_feed_retention_in_days": days, "last_access_time_enabled": True,
                             "delete_retention_policy": {"days": days},
                             "container_delete_retention_policy": {"days": days}},
            tags=merged_tags(tags), opts=self.opts())
        self.id = self.account.id
        self.name = self.account.name
        self.harden(resource_id=self.id, name=spec.name, location=spec.location, resource_group=spec.resource_group,
                    subresource="blob", subnet_id=subnet_id, zone_id=zone_id, workspace_id=workspace_id, tags=tags,
                    logs=False)
        self.diagnostics("blob-diag", pulumi.Output.concat(self.id, "/blobServices/default"), workspace_id)
        azure.storage.Container(self.child("models"), name=spec.model_container, storage_account_id=self.id,
                                container_access_type="private", opts=self.opts())
        if spec.log_container:
            scope_name = None
            if logs_key is not None:
                scope_name = azure.storage.EncryptionScope(
                    self.child("logs-scope"), name="logs", storage_account_id=self.id, source="Microsoft.KeyVault",
                    key_vault_key_id=logs_key, infrastructure_encryption_required=True, opts=self.opts()).name
            logs = azure.storage.Container(
                self.child("logs"), name=spec.log_container, storage_account_id=self.id,
                container_access_type="private", default_encryption_scope=scope_name,
                encryption_scope_override_enabled=False if scope_name is not None else None, opts=self.opts())
            azure.storage.ContainerImmutabilityPolicy(
                self.child("logs-worm"), storage_container_resource_manager_id=logs.id,
                immutability_period_in_days=spec.immutability_days, protected_append_writes_enabled=True,
                locked=False, opts=self.opts())
        self.register_outputs({})


class ImageRegistry(_Component):
    """ACR Premium: no admin user, no anonymous pull, private only, CMK, replicated in the UAE."""

    def __init__(self, name: str, *, spec: RegistrySpec, kms_key: Out, subnet_id: Out, zone_id: Out,
                 workspace_id: Out, tags: dict[str, str], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ImageRegistry", name, opts)
        replica = PAIRED_REGION.get(spec.location)
        self.registry = azure.containerservice.Registry(
            self.child("registry"), name=spec.name, location=spec.location, resource_group_name=spec.resource_group,
            **REGISTRY, retention_policy_in_days=spec.untagged_retention_days,
            zone_redundancy_enabled=is_zonal(spec.location),
            identity={"type": "UserAssigned", "identity_ids": [spec.cmk_identity_id]},
            encryption={"key_vault_key_id": kms_key, "identity_client_id": spec.cmk_identity_client_id},
            georeplications=[{"location": replica, "zone_redundancy_enabled": is_zonal(replica),
                              "tags": merged_tags(tags)}] if spec.geo_replicate and replica else None,
            tags=merged_tags(tags), opts=self.opts())
        self.id = self.registry.id
        self.harden(resource_id=self.id, name=spec.name, location=spec.location, resource_group=spec.resource_group,
                    subresource="registry", subnet_id=subnet_id, zone_id=zone_id, workspace_id=workspace_id,
                    tags=tags)
        self.register_outputs({})


def _pool(pool: NodePool) -> dict[str, Any]:
    return {"vm_size": pool.instance_type, "auto_scaling_enabled": True, "min_count": pool.min_size,
            "max_count": pool.max_size, "node_count": pool.desired_size, "max_pods": _MAX_PODS,
            "os_disk_size_gb": pool.disk_size_gb, **NODE_POOL}


class PrivateAks(_Component):
    """Private AKS: no local accounts, Entra RBAC, KMS etcd encryption, CMK disks, tainted GPU pools."""

    def __init__(self, name: str, *, spec: ClusterSpec, kms_key: Out, workspace_id: Out, tags: dict[str, str],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("PrivateAks", name, opts)
        tags = merged_tags(tags)
        sys_pool = spec.system_pool
        self.cluster = azure.containerservice.KubernetesCluster(
            self.child("cluster"), name=spec.name, location=spec.location, resource_group_name=spec.resource_group,
            kubernetes_version=spec.kubernetes_version, dns_prefix_private_cluster=spec.name,
            sku_tier=spec.aks.sku_tier, **AKS_CLUSTER,
            azure_active_directory_role_based_access_control={
                "tenant_id": spec.tenant_id, "admin_group_object_ids": list(spec.aks.admin_group_object_ids),
                "azure_rbac_enabled": True},
            disk_encryption_set_id=spec.disk_encryption_set_id,
            identity={"type": "UserAssigned", "identity_ids": [spec.identity_id]},
            key_management_service={"key_vault_key_id": kms_key, "key_vault_network_access": "Private"},
            key_vault_secrets_provider={"secret_rotation_enabled": True, "secret_rotation_interval": "2m"},
            microsoft_defender={"log_analytics_workspace_id": workspace_id},
            oms_agent={"log_analytics_workspace_id": workspace_id, "msi_auth_for_monitoring_enabled": True},
            network_profile={
                **AKS_NETWORK,
                "pod_cidr": str(spec.aks.pod_cidr), "service_cidr": str(spec.aks.service_cidr),
                "dns_service_ip": str(spec.aks.dns_service_ip)},
            default_node_pool={
                "name": sys_pool.name, "vnet_subnet_id": spec.node_subnet_id, **_pool(sys_pool),
                "os_disk_type": "Ephemeral", "only_critical_addons_enabled": True,
                "node_labels": dict(sys_pool.labels) or None, "zones": zones(spec.location),
                "temporary_name_for_rotation": "sysrotate", "upgrade_settings": {"max_surge": "33%"}, "tags": tags},
            tags=tags, opts=self.opts())
        self.id = self.cluster.id
        self.diagnostics("diag", self.id, workspace_id)
        for pool in spec.gpu_pools:
            azure.containerservice.KubernetesClusterNodePool(
                self.child(f"pool-{pool.name}"), name=pool.name, kubernetes_cluster_id=self.id, mode="User",
                vnet_subnet_id=spec.node_subnet_id, **_pool(pool), node_taints=gpu_taints(pool),
                node_labels={**pool.labels, "accelerator": "nvidia"}, zones=zones(spec.location), gpu_driver="None",
                upgrade_settings={"max_surge": "1"}, tags=merged_tags(tags, NodePool=pool.name), opts=self.opts())
        self.register_outputs({})
