# UAE residency for Azure beyond the top-level `location` (covered by infra.residency RES-004):
# nested placements (registry geo-replicas, replica locations) and the paired-region trap.
package infra.azure.residency

import data.infra.lib
import rego.v1

placement_keys := {"location", "replica_location", "secondary_location", "failover_location"}

# AZ-RES-001: any location nested inside an azurerm resource (e.g. georeplications[].location).
deny contains lib.finding("UAE-AZ-RES-001", r.address, msg) if {
	some r in lib.resources
	lib.cloud_of(r.type) == "azure"
	walk(r.config, [path, value])
	count(path) > 1
	key := path[count(path) - 1]
	key in placement_keys
	is_string(value)
	not contains(value, "${")
	not lower(replace(value, " ", "")) in lib.allowed_regions("azure")
	msg := sprintf("%s places data in %v (at %s); Azure allows only %v (UAE residency)", [r.address, value, concat(".", [sprintf("%v", [p]) | some p in path]), lib.allowed_regions("azure")])
}

# AZ-RES-002: storage redundancy stays in-country. GRS/GZRS replicate to the paired region; for
# UAE North and UAE Central that pair is the other UAE region. Any other location has a foreign
# pair, so geo-redundancy is only allowed for accounts located in a UAE region.
geo_redundant := {"GRS", "RAGRS", "GZRS", "RAGZRS"}

deny contains lib.finding("UAE-AZ-RES-002", s.address, msg) if {
	some s in lib.resources_of("azurerm_storage_account")
	s.config.account_replication_type in geo_redundant
	not s.config.location in lib.allowed_regions("azure")
	msg := sprintf("storage account %s replicates (%s) to the paired region of %v, which is outside the UAE", [s.address, s.config.account_replication_type, s.config.location])
}
