# Encryption at rest with customer-managed keys (Key Vault, HSM-backed) on every Azure storage
# resource, double encryption where Azure offers it, and TLS 1.2 in transit.
package infra.azure.encryption

import data.infra.lib
import rego.v1

min_rsa_bits := 3072

# AZ-ENC-001: storage accounts: CMK, infrastructure (double) encryption, TLS 1.2, HTTPS only.
deny contains lib.finding("UAE-AZ-ENC-001", s.address, msg) if {
	some s in lib.resources_of("azurerm_storage_account")
	not has_cmk(s)
	msg := sprintf("storage account %s is not encrypted with a customer-managed key (customer_managed_key block or azurerm_storage_account_customer_managed_key)", [s.address])
}

has_cmk(s) if {
	some cmk in lib.blocks(object.get(s.config, "customer_managed_key", null))
	cmk.key_vault_key_id
}

has_cmk(s) if {
	some cmk in lib.resources_of("azurerm_storage_account_customer_managed_key")
	contains(cmk.config.storage_account_id, sprintf("${%s.", [s.address]))
}

deny contains lib.finding("UAE-AZ-ENC-001", s.address, msg) if {
	some s in lib.resources_of("azurerm_storage_account")
	not lib.is_true(object.get(s.config, "infrastructure_encryption_enabled", false))
	msg := sprintf("storage account %s: set infrastructure_encryption_enabled = true (a second, independent encryption layer)", [s.address])
}

deny contains lib.finding("UAE-AZ-ENC-001", s.address, msg) if {
	some s in lib.resources_of("azurerm_storage_account")
	tls := object.get(s.config, "min_tls_version", "TLS1_2")
	not tls in {"TLS1_2", "TLS1_3"}
	msg := sprintf("storage account %s accepts %s; set min_tls_version = \"TLS1_2\"", [s.address, tls])
}

deny contains lib.finding("UAE-AZ-ENC-001", s.address, msg) if {
	some s in lib.resources_of("azurerm_storage_account")
	lib.is_false(object.get(s.config, "https_traffic_only_enabled", true))
	msg := sprintf("storage account %s allows plain HTTP; set https_traffic_only_enabled = true", [s.address])
}

# AZ-ENC-002: container registries encrypted with a customer-managed key.
deny contains lib.finding("UAE-AZ-ENC-002", r.address, msg) if {
	some r in lib.resources_of("azurerm_container_registry")
	not registry_cmk(r)
	msg := sprintf("container registry %s has no customer-managed key (encryption block with key_vault_key_id)", [r.address])
}

registry_cmk(r) if {
	some e in lib.blocks(object.get(r.config, "encryption", null))
	e.key_vault_key_id
}

# AZ-ENC-003: AKS: etcd secrets with KMS (Key Vault key), node disks with a CMK disk encryption
# set, and encryption at host (temp disks and caches) on every pool.
deny contains lib.finding("UAE-AZ-ENC-003", c.address, msg) if {
	some c in lib.resources_of("azurerm_kubernetes_cluster")
	not aks_kms(c)
	msg := sprintf("AKS cluster %s does not encrypt etcd with a Key Vault key (key_management_service)", [c.address])
}

aks_kms(c) if {
	some k in lib.blocks(object.get(c.config, "key_management_service", null))
	k.key_vault_key_id
}

deny contains lib.finding("UAE-AZ-ENC-003", c.address, msg) if {
	some c in lib.resources_of("azurerm_kubernetes_cluster")
	not c.config.disk_encryption_set_id
	msg := sprintf("AKS cluster %s: node OS disks need a customer-managed key (disk_encryption_set_id)", [c.address])
}

deny contains lib.finding("UAE-AZ-ENC-003", c.address, msg) if {
	some c in lib.resources_of("azurerm_kubernetes_cluster")
	some pool in lib.blocks(c.config.default_node_pool)
	not lib.is_true(object.get(pool, "host_encryption_enabled", false))
	msg := sprintf("AKS cluster %s: the default node pool needs host_encryption_enabled = true", [c.address])
}

deny contains lib.finding("UAE-AZ-ENC-003", p.address, msg) if {
	some p in lib.resources_of("azurerm_kubernetes_cluster_node_pool")
	not lib.is_true(object.get(p.config, "host_encryption_enabled", false))
	msg := sprintf("AKS node pool %s needs host_encryption_enabled = true", [p.address])
}

# AZ-ENC-004: Key Vault keeps its keys: purge protection on (soft delete is always on).
deny contains lib.finding("UAE-AZ-ENC-004", kv.address, msg) if {
	some kv in lib.resources_of("azurerm_key_vault")
	not lib.is_true(object.get(kv.config, "purge_protection_enabled", false))
	msg := sprintf("key vault %s: set purge_protection_enabled = true (a purged CMK makes every encrypted byte unreadable)", [kv.address])
}

# AZ-ENC-005: keys are HSM-backed; RSA keys are at least 3072 bits, EC keys use P-256 or stronger.
deny contains lib.finding("UAE-AZ-ENC-005", k.address, msg) if {
	some k in lib.resources_of("azurerm_key_vault_key")
	not k.config.key_type in {"RSA-HSM", "EC-HSM"}
	msg := sprintf("key %s has key_type %v; use RSA-HSM or EC-HSM (keys never leave the HSM)", [k.address, k.config.key_type])
}

deny contains lib.finding("UAE-AZ-ENC-005", k.address, msg) if {
	some k in lib.resources_of("azurerm_key_vault_key")
	startswith(k.config.key_type, "RSA")
	object.get(k.config, "key_size", 0) < min_rsa_bits
	msg := sprintf("key %s is RSA %v bits; use at least %d", [k.address, object.get(k.config, "key_size", "unset"), min_rsa_bits])
}

deny contains lib.finding("UAE-AZ-ENC-005", k.address, msg) if {
	some k in lib.resources_of("azurerm_key_vault_key")
	startswith(k.config.key_type, "EC")
	not object.get(k.config, "curve", "") in {"P-256", "P-384", "P-521"}
	msg := sprintf("key %s uses curve %v; use P-256 (or stronger)", [k.address, object.get(k.config, "curve", "unset")])
}

# AZ-ENC-006: managed disks and disk encryption sets use customer-managed keys.
deny contains lib.finding("UAE-AZ-ENC-006", d.address, msg) if {
	some d in lib.resources_of("azurerm_disk_encryption_set")
	not d.config.key_vault_key_id
	not d.config.managed_hsm_key_id
	msg := sprintf("disk encryption set %s has no customer-managed key", [d.address])
}

deny contains lib.finding("UAE-AZ-ENC-006", d.address, msg) if {
	some d in lib.resources_of("azurerm_managed_disk")
	not d.config.disk_encryption_set_id
	msg := sprintf("managed disk %s is encrypted with a platform key; set disk_encryption_set_id", [d.address])
}
