"""The Azure security posture both renderers read: the CDKTF constructs in ``modules/azure`` and the
Pulumi components in ``stacks/pulumi/azure_components.py``. Plain data, no cdktf or pulumi import.

Only flat settings live here (both tools take them as keyword arguments of the same azurerm resource
under the same names); blocks whose shape differs by tool (the bridge pluralises some names) and
the wiring between resources stay in each renderer, where the parity test compares them.
"""

from __future__ import annotations

from typing import Any

# Log Analytics: no public ingestion or query (diagnostics ride the backbone), Entra ID only.
LOG_WORKSPACE: dict[str, Any] = {
    "sku": "PerGB2018",
    "internet_ingestion_enabled": False,
    "internet_query_enabled": False,
    "local_authentication_enabled": False,
}

# Subnets: no implicit internet SNAT; NSGs and UDRs apply to private endpoints too.
SUBNET: dict[str, Any] = {
    "default_outbound_access_enabled": False,
    "private_endpoint_network_policies": "Enabled",
}

# Key Vault: HSM-backed (premium), purge protection, Azure RBAC, reachable through its endpoint only.
KEY_VAULT: dict[str, Any] = {
    "sku_name": "premium",
    "purge_protection_enabled": True,
    "rbac_authorization_enabled": True,
    "public_network_access_enabled": False,
    "enabled_for_deployment": False,
    "enabled_for_template_deployment": False,
    "enabled_for_disk_encryption": True,  # disk encryption sets use the cluster key
}
KEY_VAULT_NETWORK_ACLS: dict[str, Any] = {"default_action": "Deny", "bypass": "AzureServices"}

# Storage: private, Entra ID only (no shared keys, SAS or local users), TLS 1.2, double encryption.
STORAGE_ACCOUNT: dict[str, Any] = {
    "account_kind": "StorageV2",
    "account_tier": "Standard",
    "min_tls_version": "TLS1_2",
    "https_traffic_only_enabled": True,
    "public_network_access_enabled": False,
    "allow_nested_items_to_be_public": False,
    "shared_access_key_enabled": False,
    "default_to_oauth_authentication": True,
    "local_user_enabled": False,
    "sftp_enabled": False,
    "cross_tenant_replication_enabled": False,
    "allowed_copy_scope": "PrivateLink",
    "infrastructure_encryption_enabled": True,
    "queue_encryption_key_type": "Account",
    "table_encryption_key_type": "Account",
}
STORAGE_SAS_POLICY: dict[str, Any] = {"expiration_period": "00.01:00:00", "expiration_action": "Block"}

# ACR: Premium (private link, CMK, geo-replication); no admin user, anonymous pull, export or bypass.
REGISTRY: dict[str, Any] = {
    "sku": "Premium",
    "admin_enabled": False,
    "anonymous_pull_enabled": False,
    "public_network_access_enabled": False,
    "export_policy_enabled": False,
    "network_rule_bypass_option": "None",
    "data_endpoint_enabled": True,
    "quarantine_policy_enabled": True,
}

# AKS: private API server without public FQDN, no local accounts, Entra ID RBAC, workload identity.
AKS_CLUSTER: dict[str, Any] = {
    "private_cluster_enabled": True,
    "private_cluster_public_fqdn_enabled": False,
    "private_dns_zone_id": "System",
    "local_account_disabled": True,
    "role_based_access_control_enabled": True,
    "oidc_issuer_enabled": True,
    "workload_identity_enabled": True,
    "azure_policy_enabled": True,
    "run_command_enabled": False,
    "http_application_routing_enabled": False,
    "image_cleaner_enabled": True,
    "image_cleaner_interval_hours": 48,
    "automatic_upgrade_channel": "patch",
    "node_os_upgrade_channel": "NodeImage",
}
# Overlay networking with Cilium policies; the only way out is the route table's next hop.
AKS_NETWORK: dict[str, Any] = {
    "network_plugin": "azure",
    "network_plugin_mode": "overlay",
    "network_data_plane": "cilium",
    "network_policy": "cilium",
    "outbound_type": "userDefinedRouting",
    "load_balancer_sku": "standard",
}
# Every node pool: hardened OS image, host (temp disk and cache) encryption, no public node IPs.
NODE_POOL: dict[str, Any] = {
    "os_sku": "AzureLinux",
    "host_encryption_enabled": True,
    "node_public_ip_enabled": False,
}
