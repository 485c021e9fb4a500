"""Composition of the Azure constructs into the four layer stacks of one environment."""

from __future__ import annotations

from blueprints.schema import Environment, KeyPurpose, SegmentName
from modules.azure.cluster import AksCluster, ClusterSpec
from modules.azure.common import merged_tags
from modules.azure.keyvault import KeyVault, KeyVaultSpec
from modules.azure.monitoring import LogAnalytics, WorkspaceSpec
from modules.azure.network import AzureNetwork, NetworkSpec, PlatformFlow
from modules.azure.private_link import DnsZonesSpec, EndpointSpec, PrivateDnsZones
from modules.azure.registry import ContainerRegistry, RegistrySpec
from modules.azure.resource_group import ResourceGroup, ResourceGroupSpec
from modules.azure.storage import ArtifactStorage, StorageSpec
from modules.cdk import App, TerraformOutput, azurerm
from stacks.azure.base import AzureEnvironmentStack, azure_settings
from stacks.built import BuiltStack

LAYERS = ("network", "security", "registry", "cluster")
# The node subnet: AKS pools and the API server's private endpoint live in the serving segment.
NODE_SEGMENT = SegmentName.serving


def _platform_flows(env: Environment) -> tuple[PlatformFlow, ...]:
    """What AKS itself needs inside the node subnet, beyond the blueprint's flows."""
    az = azure_settings(env)
    seg = env.network.segment(NODE_SEGMENT)
    assert seg is not None  # serving is a required segment
    nodes = str(seg.cidr)
    return (
        PlatformFlow(
            name="aks-api-server",
            source=nodes,
            destination=nodes,
            ports=("443",),
            segment=NODE_SEGMENT,
            description="kubelets and konnectivity to the private API server endpoint in the node subnet",
        ),
        PlatformFlow(
            name="aks-pod-network",
            source=str(az.aks.pod_cidr),
            destination=str(az.aks.pod_cidr),
            ports=("*",),
            segment=NODE_SEGMENT,
            description="pod to pod (overlay; DNS is UDP); isolated per namespace by Cilium network policies",
            protocol="*",
        ),
    )


def build_azure_environment(app: App, env: Environment) -> list[BuiltStack]:

    az = azure_settings(env)
    tags = env.tag_map()
    loc = env.region
    rg_name = az.resource_group
    stacks = {layer: AzureEnvironmentStack(app, layer, env) for layer in LAYERS}
    net_stack, sec_stack, reg_stack, cl_stack = (stacks[layer] for layer in LAYERS)

    # -- network: resource group, logs, VNet, NSGs, routes, private DNS --------------------------
    rg = ResourceGroup(net_stack, "rg", spec=ResourceGroupSpec(name=rg_name, location=loc), tags=tags)
    logs = LogAnalytics(
        net_stack,
        "logs",
        spec=WorkspaceSpec(
            name=f"log-{env.name}",
            location=loc,
            resource_group=rg.name,
            retention_days=env.logging.retention_days,
        ),
        tags=tags,
    )
    sink = logs.sink
    network = AzureNetwork(
        net_stack,
        "network",
        spec=NetworkSpec(
            name=f"vnet-{env.name}",
            location=loc,
            resource_group=rg.name,
            network=env.network,
            egress_next_hop=str(az.egress_firewall_ip),
            routed_segments=tuple(s.name for s in env.network.segments if s.name is not SegmentName.egress),
            platform_flows=_platform_flows(env),
        ),
        tags=tags,
        logging=sink,
    )
    dns = PrivateDnsZones(
        net_stack, "dns", spec=DnsZonesSpec(resource_group=rg.name, virtual_network_id=network.id), tags=tags
    )
    endpoints_subnet = network.subnet_ids[SegmentName.endpoints]

    def endpoint(sub: str) -> EndpointSpec:
        return EndpointSpec(subnet_id=endpoints_subnet, dns_zone_id=dns.zone_ids[sub])

    # -- security: identities, Key Vault and keys, role assignments, disk encryption set --------
    uai = azurerm("user_assigned_identity")
    cmk_id = uai.UserAssignedIdentity(
        sec_stack,
        "cmk-identity",
        name=f"id-{env.name}-cmk",
        location=loc,
        resource_group_name=rg_name,
        tags=tags,
    )
    aks_id = uai.UserAssignedIdentity(
        sec_stack,
        "aks-identity",
        name=f"id-{env.name}-aks",
        location=loc,
        resource_group_name=rg_name,
        tags=tags,
    )
    vault = KeyVault(
        sec_stack,
        "vault",
        spec=KeyVaultSpec(
            name=az.key_vault,
            location=loc,
            resource_group=rg_name,
            tenant_id=az.tenant_id,
            purposes=tuple(env.kms.purposes),
            soft_delete_retention_days=max(env.kms.deletion_window_days, 7),
            endpoint=endpoint("vault"),
        ),
        tags=tags,
        logging=sink,
    )
    ra = azurerm("role_assignment")
    cmk_grant = ra.RoleAssignment(
        sec_stack,
        "cmk-crypto",
        scope=vault.id,
        role_definition_name="Key Vault Crypto Service Encryption User",
        principal_id=cmk_id.principal_id,
        principal_type="ServicePrincipal",
        description="Storage, ACR and disk encryption wrap their data keys with the CMK",
    )
    ra.RoleAssignment(
        sec_stack,
        "aks-kms",
        scope=vault.id,
        role_definition_name="Key Vault Crypto User",
        principal_id=aks_id.principal_id,
        principal_type="ServicePrincipal",
        description="AKS KMS v2 encrypts etcd secrets with the cluster key",
    )
    des = azurerm("disk_encryption_set").DiskEncryptionSet(
        sec_stack,
        "disks",
        name=f"des-{env.name}",
        location=loc,
        resource_group_name=rg_name,
        key_vault_key_id=vault.versionless_key_ids[KeyPurpose.cluster],
        auto_key_rotation_enabled=True,
        encryption_type="EncryptionAtRestWithPlatformAndCustomerKeys",  # double encryption
        identity={"type": "UserAssigned", "identity_ids": [cmk_id.id]},
        tags=tags,
        depends_on=[cmk_grant],
    )

    # -- registry: model artifacts (Storage) and images (ACR) ------------------------------------
    storage = ArtifactStorage(
        reg_stack,
        "artifacts",
        spec=StorageSpec(
            name=az.storage_account,
            location=loc,
            resource_group=rg_name,
            cmk_identity_id=cmk_id.id,
            model_container=env.registries.model_bucket,
            log_container=env.registries.log_bucket,
            logs_key_id=vault.versionless_key_ids.get(KeyPurpose.logs),
            immutability_days=env.registries.object_lock_days,
            endpoint=endpoint("blob"),
        ),
        kms_key=vault.versionless_key_ids[KeyPurpose.artifacts],
        tags=tags,
        logging=sink,
    )
    acr = ContainerRegistry(
        reg_stack,
        "images",
        spec=RegistrySpec(
            name=az.container_registry,
            location=loc,
            resource_group=rg_name,
            cmk_identity_id=cmk_id.id,
            cmk_identity_client_id=cmk_id.client_id,
            endpoint=endpoint("registry"),
        ),
        kms_key=vault.versionless_key_ids[KeyPurpose.artifacts],
        tags=tags,
        logging=sink,
    )

    # -- cluster: AKS and its GPU pools -----------------------------------------------------------
    node_subnet = network.subnet_ids[NODE_SEGMENT]
    net_grants = [
        ra.RoleAssignment(
            cl_stack,
            f"aks-network-{i}",
            scope=target,
            role_definition_name="Network Contributor",
            principal_id=aks_id.principal_id,
            principal_type="ServicePrincipal",
            description="AKS joins nodes to the subnet and reads the route table (userDefinedRouting)",
        )
        for i, target in enumerate([node_subnet, network.route_table_id])
        if target is not None
    ]
    aks = AksCluster(
        cl_stack,
        "aks",
        spec=ClusterSpec(
            name=env.cluster.name,
            location=loc,
            resource_group=rg_name,
            tenant_id=az.tenant_id,
            kubernetes_version=env.cluster.kubernetes_version,
            system_pool=env.cluster.system_pool,
            gpu_pools=tuple(env.cluster.gpu_pools),
            aks=az.aks,
            node_subnet_id=node_subnet,
            identity_id=aks_id.id,
            disk_encryption_set_id=des.id,
        ),
        kms_key=vault.key_ids[KeyPurpose.cluster],
        tags=merged_tags(tags),
        logging=sink,
    )
    aks.cluster.node.add_dependency(*net_grants)
    ra.RoleAssignment(
        cl_stack,
        "kubelet-acr-pull",
        scope=acr.id,
        role_definition_name="AcrPull",
        principal_id=aks.cluster.kubelet_identity.object_id,
        principal_type="ServicePrincipal",
        description="nodes pull images from the private registry (no admin user, no pull secrets)",
    )
    TerraformOutput(
        cl_stack,
        "oidc_issuer_url",
        value=aks.oidc_issuer_url,
        description="federate workload identities against this issuer",
    )
    TerraformOutput(reg_stack, "model_storage_account", value=storage.name)

    sec_stack.add_dependency(net_stack)
    reg_stack.add_dependency(sec_stack)
    cl_stack.add_dependency(reg_stack)
    return [
        BuiltStack(
            stack=s,
            name=f"{env.name}-{layer}",
            environment=env.name,
            cloud=str(env.cloud),
            layer=layer,
            order=i,
        )
        for i, (layer, s) in enumerate(stacks.items())
    ]
