# UAE residency: every provider, the state backend and every resource stays in an allowed region.
# Cloud-neutral: the cloud comes from the provider name or the resource type prefix, so Azure
# stacks (azurerm_*, `location`) are covered by the same rules.
package infra.residency

import data.infra.lib
import rego.v1

provider_cloud := {"aws": "aws", "azurerm": "azure"}

# RES-001: an AWS provider (any alias) in a region outside the allow-list.
deny contains lib.finding("UAE-RES-001", sprintf("provider.%s%s", [pname, alias_suffix(p)]), msg) if {
	some pname, list in input.provider
	cloud := provider_cloud[pname]
	some p in lib.blocks(list)
	region := object.get(p, "region", null)
	region != null
	not region in lib.allowed_regions(cloud)
	msg := sprintf("provider %s is configured for region %v; UAE residency allows only %v", [pname, region, lib.allowed_text(cloud)])
}

# RES-002: an AWS provider with no region falls back to the caller's environment: not provable.
deny contains lib.finding("UAE-RES-002", sprintf("provider.aws%s", [alias_suffix(p)]), msg) if {
	some p in lib.blocks(input.provider.aws)
	not p.region
	msg := "provider aws has no region; set region explicitly so the stack cannot follow AWS_REGION out of the UAE"
}

# RES-003: the Terraform state itself must stay in the UAE.
deny contains lib.finding("UAE-RES-003", "terraform.backend.s3", msg) if {
	region := input.terraform.backend.s3.region
	not region in lib.allowed_regions("aws")
	msg := sprintf("the S3 state backend is in region %v; keep the state in %v", [region, lib.allowed_text("aws")])
}

# RES-004: resource attributes that place it somewhere (region, location, availability_zone).
placement_attrs := {"region", "location", "availability_zone", "destination_region", "source_region"}

deny contains lib.finding("UAE-RES-004", r.address, msg) if {
	some r in lib.resources
	cloud := lib.cloud_of(r.type)
	some attr in placement_attrs
	value := r.config[attr]
	is_string(value)
	not contains(value, "${")
	not placed_in_uae(cloud, attr, value)
	msg := sprintf("%s %s = %v is outside the UAE (allowed: %v)", [r.address, attr, value, lib.allowed_text(cloud)])
}

placed_in_uae(cloud, "availability_zone", value) if {
	some region in lib.allowed_regions(cloud)
	startswith(value, region)
}

placed_in_uae(cloud, attr, value) if {
	attr != "availability_zone"
	value in lib.allowed_regions(cloud)
}

# RES-005: any string in a resource that names a non-UAE AWS region (an ARN, an endpoint, a
# replication destination buried in a nested block).
aws_region_pattern := `(us|eu|ap|sa|ca|me|af|il|mx|cn)(-gov|-iso|-isob|-isoe|-isof)?-(north|south|east|west|central|northeast|northwest|southeast|southwest)-[0-9]+`

deny contains lib.finding("UAE-RES-005", r.address, msg) if {
	some r in lib.resources
	walk(r.config, [path, value])
	is_string(value)
	some region in regex.find_n(aws_region_pattern, value, -1)
	not region in lib.allowed_regions("aws")
	msg := sprintf("%s refers to AWS region %s (at %s); everything must stay in %v", [r.address, region, concat(".", [sprintf("%v", [p]) | some p in path]), lib.allowed_text("aws")])
}

alias_suffix(p) := sprintf(" (alias %s)", [p.alias]) if p.alias

alias_suffix(p) := "" if not p.alias
