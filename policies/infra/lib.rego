# Helpers shared by the infra guardrails. Input: one synthesized CDKTF stack (cdk.tf.json).
# Data: data.residency.allowed = {"aws": [...], "azure": [...]} from blueprints/residency.py.
package infra.lib

import rego.v1

# Every resource of the stack as {type, name, address, config}; `address` is what terraform,
# checkov and policies/skips.yaml call it (type.name).
resources contains r if {
	some rtype, named in input.resource
	some name, config in named
	r := {"type": rtype, "name": name, "address": sprintf("%s.%s", [rtype, name]), "config": config}
}

resources_of(rtype) := {r | some r in resources; r.type == rtype}

# Nested blocks come as an object (single block) or a list of objects, depending on the schema.
blocks(x) := x if is_array(x)

blocks(x) := [x] if is_object(x)

blocks(x) := [] if x == null

# Terraform accepts true or "true"; a token ("${var.x}") cannot be proven true, so it is not.
is_true(x) if x == true

is_true(x) if x == "true"

is_false(x) if x == false

is_false(x) if x == "false"

# A reference to a resource in CDKTF JSON: "${aws_s3_bucket.logs.id}" (or .bucket/.arn).
refers_to(value, target) if {
	is_string(value)
	contains(value, sprintf("${%s.", [target.address]))
}

# ... or the same literal name (a resource may name its bucket directly).
refers_to(value, target) if {
	is_string(value)
	is_string(target.config.bucket)
	value == target.config.bucket
}

open_cidrs := {"0.0.0.0/0", "::/0"}

is_open_cidr(c) if c in open_cidrs

default _allowed := {}

_allowed := data.residency.allowed

# Unknown cloud or missing data: nothing is allowed (fail closed).
allowed_regions(cloud) := object.get(_allowed, cloud, [])

cloud_of(rtype) := "aws" if startswith(rtype, "aws_")

cloud_of(rtype) := "azure" if startswith(rtype, "azurerm_")

finding(id, resource, message) := {"id": id, "resource": resource, "message": message}

allowed_text(cloud) := concat(", ", allowed_regions(cloud))
