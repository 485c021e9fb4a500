"""AKS: a private cluster with no local accounts, Entra ID RBAC, workload identity, Azure Policy,
KMS (etcd) encryption with the cluster key, CMK-encrypted node disks, a system pool and the
blueprint's GPU pools tainted ``nvidia.com/gpu=true:NoSchedule``.

The API server has no public address (private cluster, no public FQDN); nodes leave the VNet only
through the route table's next hop (``userDefinedRouting``): there is no public load balancer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from blueprints.schema import AzureAks, NodePool
from modules.azure.common import LogSink, diagnostics, merged_tags, zones
from modules.azure.posture import AKS_CLUSTER, AKS_NETWORK, NODE_POOL
from modules.cdk import Construct, azurerm

# AKS's recommended floor for pods per node (a low max_pods starves DaemonSets).
_MAX_PODS = 50


@dataclass(frozen=True)
class ClusterSpec:
    name: str
    location: str
    resource_group: str
    tenant_id: str
    kubernetes_version: str
    system_pool: NodePool
    gpu_pools: tuple[NodePool, ...]
    aks: AzureAks
    node_subnet_id: str
    identity_id: str  # user-assigned control-plane identity (KMS, subnet and route table rights)
    disk_encryption_set_id: str | None = None
    extra_tags: dict[str, str] = field(default_factory=dict)


def gpu_taints(pool: NodePool) -> list[str]:
    return [f"{t.key}={t.value}:{t.effect}" for t in pool.effective_taints]


class AksCluster(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        spec: ClusterSpec,
        kms_key: str | None = None,  # versioned Key Vault key id for etcd (KMS v2) encryption
        tags: dict[str, str] | None = None,
        logging: LogSink | None = None,
    ) -> None:
        super().__init__(scope, id_)
        kc = azurerm("kubernetes_cluster")
        tags = merged_tags(tags)
        sys_pool = spec.system_pool
        self.cluster = kc.KubernetesCluster(
            self,
            "cluster",
            name=spec.name,
            location=spec.location,
            resource_group_name=spec.resource_group,
            kubernetes_version=spec.kubernetes_version,
            dns_prefix_private_cluster=spec.name,
            sku_tier=spec.aks.sku_tier,
            # Private API server, no local accounts, Entra ID RBAC (modules/azure/posture.py).
            **AKS_CLUSTER,
            azure_active_directory_role_based_access_control=kc.KubernetesClusterAzureActiveDirectoryRoleBasedAccessControl(
                tenant_id=spec.tenant_id,
                admin_group_object_ids=list(spec.aks.admin_group_object_ids),
                azure_rbac_enabled=True,
            ),
            disk_encryption_set_id=spec.disk_encryption_set_id,
            identity=kc.KubernetesClusterIdentity(type="UserAssigned", identity_ids=[spec.identity_id]),
            key_management_service=(
                kc.KubernetesClusterKeyManagementService(
                    key_vault_key_id=kms_key, key_vault_network_access="Private"
                )
                if kms_key
                else None
            ),
            key_vault_secrets_provider=kc.KubernetesClusterKeyVaultSecretsProvider(
                secret_rotation_enabled=True,
                secret_rotation_interval="2m",  # noqa: S106 - an interval, not a secret
            ),
            microsoft_defender=(
                kc.KubernetesClusterMicrosoftDefender(log_analytics_workspace_id=logging.workspace_id)
                if logging
                else None
            ),
            oms_agent=(
                kc.KubernetesClusterOmsAgent(
                    log_analytics_workspace_id=logging.workspace_id, msi_auth_for_monitoring_enabled=True
                )
                if logging
                else None
            ),
            network_profile=kc.KubernetesClusterNetworkProfile(
                **AKS_NETWORK,
                pod_cidr=str(spec.aks.pod_cidr),
                service_cidr=str(spec.aks.service_cidr),
                dns_service_ip=str(spec.aks.dns_service_ip),
            ),
            default_node_pool=kc.KubernetesClusterDefaultNodePool(
                name=sys_pool.name,
                vm_size=sys_pool.instance_type,
                vnet_subnet_id=spec.node_subnet_id,
                auto_scaling_enabled=True,
                min_count=sys_pool.min_size,
                max_count=sys_pool.max_size,
                node_count=sys_pool.desired_size,
                max_pods=_MAX_PODS,
                os_disk_size_gb=sys_pool.disk_size_gb,
                # Ephemeral OS disks live on the VM's local disk: nothing persists at rest when a
                # node goes away. The system VM size needs a local disk >= os_disk_size_gb ("d" sizes).
                os_disk_type="Ephemeral",
                **NODE_POOL,
                # System pods only: workloads never land next to CoreDNS and the konnectivity agent.
                only_critical_addons_enabled=True,
                node_labels=dict(sys_pool.labels) or None,
                zones=zones(spec.location),
                temporary_name_for_rotation="sysrotate",
                upgrade_settings=kc.KubernetesClusterDefaultNodePoolUpgradeSettings(max_surge="33%"),
                tags=tags,
            ),
            tags=tags,
        )
        self.id: str = self.cluster.id
        self.oidc_issuer_url: str = self.cluster.oidc_issuer_url
        diagnostics(self, "diag", target_resource_id=self.cluster.id, logging=logging)
        np = azurerm("kubernetes_cluster_node_pool")
        self.gpu_pools: list[Construct] = []
        for pool in spec.gpu_pools:
            self.gpu_pools.append(
                np.KubernetesClusterNodePool(
                    self,
                    f"pool-{pool.name}",
                    name=pool.name,
                    kubernetes_cluster_id=self.cluster.id,
                    mode="User",
                    vm_size=pool.instance_type,
                    vnet_subnet_id=spec.node_subnet_id,
                    auto_scaling_enabled=True,
                    min_count=pool.min_size,
                    max_count=pool.max_size,
                    node_count=pool.desired_size,
                    max_pods=_MAX_PODS,
                    os_disk_size_gb=pool.disk_size_gb,
                    **NODE_POOL,
                    node_taints=gpu_taints(pool),
                    node_labels={**pool.labels, "accelerator": "nvidia"},
                    zones=zones(spec.location),
                    # The NVIDIA GPU Operator manages drivers, pinned with the rest of the platform.
                    gpu_driver="None",
                    upgrade_settings=np.KubernetesClusterNodePoolUpgradeSettings(max_surge="1"),
                    tags=merged_tags(tags, NodePool=pool.name),
                )
            )
