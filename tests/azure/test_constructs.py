"""Each Azure construct is locked down with nothing but its spec: no optional argument opens it."""

from __future__ import annotations

import json
from pathlib import Path

from blueprints import load_environment
from control_plane.policy.findings import StackFile
from control_plane.policy.infra_gate import check_stacks

REPO = Path(__file__).resolve().parents[2]
ENV = load_environment(REPO / "blueprints/uae-prod-azure.yaml")
SUBNET = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/serving"
IDENTITY = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id"


def test_constructs_without_optional_arguments_expose_nothing(tmp_path):
    from modules.azure.cluster import AksCluster, ClusterSpec
    from modules.azure.keyvault import KeyVault, KeyVaultSpec
    from modules.azure.network import AzureNetwork, NetworkSpec
    from modules.azure.registry import ContainerRegistry, RegistrySpec
    from modules.azure.storage import ArtifactStorage, StorageSpec
    from modules.cdk import App, TerraformStack, azurerm

    app = App(outdir=str(tmp_path))
    stack = TerraformStack(app, "bare")
    azurerm("provider").AzurermProvider(stack, "azurerm", features=[{}])
    loc, rg, az = "uaenorth", "rg", ENV.azure
    AzureNetwork(
        stack, "net", spec=NetworkSpec(name="vnet", location=loc, resource_group=rg, network=ENV.network)
    )
    KeyVault(
        stack, "kv", spec=KeyVaultSpec(name="kvbare", location=loc, resource_group=rg, tenant_id=az.tenant_id)
    )
    ArtifactStorage(
        stack,
        "sa",
        spec=StorageSpec(name="stbare", location=loc, resource_group=rg, cmk_identity_id=IDENTITY),
    )
    ContainerRegistry(
        stack,
        "acr",
        spec=RegistrySpec(
            name="acrbare",
            location=loc,
            resource_group=rg,
            cmk_identity_id=IDENTITY,
            cmk_identity_client_id="c",
        ),
    )
    AksCluster(
        stack,
        "aks",
        spec=ClusterSpec(
            name="aksbare",
            location=loc,
            resource_group=rg,
            tenant_id=az.tenant_id,
            kubernetes_version="1.31",
            system_pool=ENV.cluster.system_pool,
            gpu_pools=tuple(ENV.cluster.gpu_pools),
            aks=az.aks,
            node_subnet_id=SUBNET,
            identity_id=IDENTITY,
        ),
    )
    app.synth()
    path = tmp_path / "stacks" / "bare" / "cdk.tf.json"
    doc = json.loads(path.read_text())
    report = check_stacks([StackFile(name="bare", path=path, cloud="azure")], with_checkov=False)
    ids = {f.id for f in report.findings}
    # Nothing public, nothing outside the UAE, even with no optional argument...
    assert not {i for i in ids if i.startswith(("UAE-AZ-PUB", "UAE-RES", "UAE-AZ-RES"))}, report.findings
    # ...and what is left to the caller is exactly the customer-managed keys (the kms_key knob).
    assert ids <= {"UAE-AZ-ENC-001", "UAE-AZ-ENC-002", "UAE-AZ-ENC-003"}
    rules = doc["resource"]["azurerm_network_security_rule"].values()
    assert sum(1 for r in rules if r["access"] == "Deny" and r["priority"] == 4096) == 2 * len(
        ENV.network.segments
    )
    assert all(
        p["node_taints"] == ["nvidia.com/gpu=true:NoSchedule"]
        for p in doc["resource"]["azurerm_kubernetes_cluster_node_pool"].values()
    )
