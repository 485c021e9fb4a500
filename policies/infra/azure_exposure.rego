# No public endpoints on Azure: every data service is reachable through private endpoints only,
# nothing accepts local credentials, and the AKS API server has no public address.
# Azure's defaults are the opposite for most of these, so an absent attribute is a finding.
package infra.azure.exposure

import data.infra.lib
import rego.v1

# Off unless the stack says so explicitly (a "${token}" cannot be proven false, so it fails).
public_unless_false(config, attr) if not lib.is_false(object.get(config, attr, true))

# AZ-PUB-001: storage accounts closed to the internet, no anonymous blobs, no account keys.
deny contains lib.finding("UAE-AZ-PUB-001", s.address, msg) if {
	some s in lib.resources_of("azurerm_storage_account")
	some attr in ["public_network_access_enabled", "allow_nested_items_to_be_public", "shared_access_key_enabled"]
	public_unless_false(s.config, attr)
	msg := sprintf("storage account %s: set %s = false (public storage: reachable or readable from the internet, or usable with account keys)", [s.address, attr])
}

# AZ-PUB-002: storage containers are private (no anonymous read of blobs or listings).
deny contains lib.finding("UAE-AZ-PUB-002", c.address, msg) if {
	some c in lib.resources_of("azurerm_storage_container")
	access := object.get(c.config, "container_access_type", "private")
	access != "private"
	msg := sprintf("storage container %s has container_access_type %q; public storage is refused, use \"private\"", [c.address, access])
}

# AZ-PUB-003: Key Vault reachable only through its private endpoint, with Azure RBAC.
deny contains lib.finding("UAE-AZ-PUB-003", kv.address, msg) if {
	some kv in lib.resources_of("azurerm_key_vault")
	public_unless_false(kv.config, "public_network_access_enabled")
	msg := sprintf("key vault %s: set public_network_access_enabled = false (reach it through its private endpoint)", [kv.address])
}

deny contains lib.finding("UAE-AZ-PUB-003", kv.address, msg) if {
	some kv in lib.resources_of("azurerm_key_vault")
	not lib.is_true(object.get(kv.config, "rbac_authorization_enabled", object.get(kv.config, "enable_rbac_authorization", false)))
	msg := sprintf("key vault %s: set rbac_authorization_enabled = true (access policies bypass Entra ID RBAC and PIM)", [kv.address])
}

# AZ-PUB-004: container registries private, without the admin user or anonymous pull.
deny contains lib.finding("UAE-AZ-PUB-004", r.address, msg) if {
	some r in lib.resources_of("azurerm_container_registry")
	public_unless_false(r.config, "public_network_access_enabled")
	msg := sprintf("container registry %s: set public_network_access_enabled = false", [r.address])
}

deny contains lib.finding("UAE-AZ-PUB-004", r.address, msg) if {
	some r in lib.resources_of("azurerm_container_registry")
	some attr in ["admin_enabled", "anonymous_pull_enabled"]
	lib.is_true(object.get(r.config, attr, false))
	msg := sprintf("container registry %s: %s must be false (shared credentials / unauthenticated pulls)", [r.address, attr])
}

# AZ-PUB-005: AKS API server private, no public FQDN, no local (certificate) accounts.
deny contains lib.finding("UAE-AZ-PUB-005", c.address, msg) if {
	some c in lib.resources_of("azurerm_kubernetes_cluster")
	not lib.is_true(object.get(c.config, "private_cluster_enabled", false))
	msg := sprintf("AKS cluster %s has a public API server; set private_cluster_enabled = true", [c.address])
}

deny contains lib.finding("UAE-AZ-PUB-005", c.address, msg) if {
	some c in lib.resources_of("azurerm_kubernetes_cluster")
	lib.is_true(object.get(c.config, "private_cluster_public_fqdn_enabled", false))
	msg := sprintf("AKS cluster %s publishes its API server name in public DNS; set private_cluster_public_fqdn_enabled = false", [c.address])
}

deny contains lib.finding("UAE-AZ-PUB-005", c.address, msg) if {
	some c in lib.resources_of("azurerm_kubernetes_cluster")
	not lib.is_true(object.get(c.config, "local_account_disabled", false))
	msg := sprintf("AKS cluster %s keeps local accounts (a static admin kubeconfig); set local_account_disabled = true", [c.address])
}

# AZ-PUB-006: no node with a public IP.
deny contains lib.finding("UAE-AZ-PUB-006", c.address, msg) if {
	some c in lib.resources_of("azurerm_kubernetes_cluster")
	some pool in lib.blocks(c.config.default_node_pool)
	lib.is_true(object.get(pool, "node_public_ip_enabled", false))
	msg := sprintf("AKS cluster %s: the default node pool gives nodes public IPs; set node_public_ip_enabled = false", [c.address])
}

deny contains lib.finding("UAE-AZ-PUB-006", p.address, msg) if {
	some p in lib.resources_of("azurerm_kubernetes_cluster_node_pool")
	lib.is_true(object.get(p.config, "node_public_ip_enabled", false))
	msg := sprintf("AKS node pool %s gives nodes public IPs; set node_public_ip_enabled = false", [p.address])
}

# AZ-PUB-007: no public IP addresses at all (the platform's only way out is the egress firewall,
# which is not part of these stacks).
deny contains lib.finding("UAE-AZ-PUB-007", p.address, msg) if {
	some p in lib.resources_of("azurerm_public_ip")
	msg := sprintf("%s is a public IP address; the platform has no internet-facing endpoint", [p.address])
}

# AZ-PUB-008: no NSG rule admits traffic from the internet.
internet_sources := {"*", "0.0.0.0/0", "::/0", "internet", "any"}

from_internet(rule) if lower(object.get(rule, "source_address_prefix", "")) in internet_sources

from_internet(rule) if {
	some p in object.get(rule, "source_address_prefixes", [])
	lower(p) in internet_sources
}

sources(rule) := array.concat([p | some p in [object.get(rule, "source_address_prefix", null)]; p != null], object.get(rule, "source_address_prefixes", []))

deny contains lib.finding("UAE-AZ-PUB-008", r.address, msg) if {
	some r in lib.resources_of("azurerm_network_security_rule")
	r.config.direction == "Inbound"
	r.config.access == "Allow"
	from_internet(r.config)
	msg := sprintf("NSG rule %s allows inbound traffic from %v; allow only the blueprint's segment CIDRs", [r.address, sources(r.config)])
}

deny contains lib.finding("UAE-AZ-PUB-008", g.address, msg) if {
	some g in lib.resources_of("azurerm_network_security_group")
	some rule in lib.blocks(object.get(g.config, "security_rule", []))
	rule.direction == "Inbound"
	rule.access == "Allow"
	from_internet(rule)
	msg := sprintf("NSG %s has an inline rule %v allowing inbound traffic from the internet", [g.address, rule.name])
}

# AZ-PUB-009: Log Analytics accepts no ingestion or queries from the public internet.
deny contains lib.finding("UAE-AZ-PUB-009", w.address, msg) if {
	some w in lib.resources_of("azurerm_log_analytics_workspace")
	some attr in ["internet_ingestion_enabled", "internet_query_enabled"]
	public_unless_false(w.config, attr)
	msg := sprintf("Log Analytics workspace %s: set %s = false (use a private link scope)", [w.address, attr])
}
