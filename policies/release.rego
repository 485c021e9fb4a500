# Approval rules per environment tier, evaluated by `mlctl approve` / the release gate as
# data.release.decision with input:
#   {"env": "uae-prod-aws", "tier": "prod",
#    "model": {"ref": "fraud:3", "classification": "pii", "registered_by": "dana",
#              "root_digest": "sha256:...", "signed": true},
#    "approvals": [{"approver": "amira", "roles": ["approver"], "verified": true, "kind": "person",
#                    "root_digest": "sha256:..."}]}
# Roles are the approver's roles *now* (revoking a role withdraws that person's approvals).
# The tier is the blueprint environment's declared `tier:` (blueprints/schema.py); it is never
# derived from the environment's name.
package release

import rego.v1

tiers := {"dev", "staging", "prod"}

sensitive := {"confidential", "pii"}

# Approvals count only for the exact bytes registered, never from the registrant, and in staging
# and prod only from a verified person (an asserted `--as` approval, or a workload's, never
# counts there: the two-person rule is about people).
valid contains a if {
	some a in input.approvals
	a.root_digest == input.model.root_digest
	a.approver != input.model.registered_by
	identity_ok(a)
}

identity_ok(a) if input.tier == "dev"

identity_ok(a) if {
	a.verified == true
	a.kind == "person"
}

approvers := {a.approver | some a in valid; "approver" in a.roles}

officers := {a.approver | some a in valid; "security-officer" in a.roles}

# Messages that include these use concat, not sprintf: rego-cpp 1.5's sprintf wraps strings that
# come from other rules in quotes, which breaks its own JSON output.
approver_names := concat(", ", sort([a | some a in approvers]))

officer_names := concat(", ", sort([a | some a in officers]))

deny contains msg if {
	not input.tier in tiers
	msg := sprintf("environment '%s' has no known tier (declare tier: dev, staging or prod in its blueprint)", [input.env])
}

deny contains msg if {
	input.tier in {"staging", "prod"}
	not input.model.signed
	msg := sprintf("%s is not signed: sign it (mlctl model sign %s) before %s (%s tier)", [input.model.ref, input.model.ref, input.env, input.tier])
}

deny contains msg if {
	input.tier == "staging"
	count(approvers) < 1
	msg := sprintf("staging needs 1 approval by an approver; %s has none", [input.model.ref])
}

deny contains msg if {
	input.tier == "prod"
	count(approvers) < 2
	msg := concat("", [
		"prod needs 2 distinct approvers other than the registrant; ", input.model.ref, " has ",
		format_int(count(approvers), 10), listed,
	])
}

deny contains msg if {
	input.tier == "prod"
	input.model.classification in sensitive
	count(officers) < 1
	msg := sprintf(
		"prod release of a %s model needs an approval by a security-officer; %s has none",
		[input.model.classification, input.model.ref],
	)
}

# Every ignored approval is named, so the operator sees why it did not count.
notes contains msg if {
	some a in input.approvals
	a.approver == input.model.registered_by
	msg := sprintf("approval by '%s' ignored: the registrant cannot approve their own model", [a.approver])
}

notes contains msg if {
	some a in input.approvals
	not identity_ok(a)
	msg := sprintf("approval by '%s' ignored: it was not made by a verified person", [a.approver])
}

notes contains msg if {
	some a in input.approvals
	a.root_digest != input.model.root_digest
	msg := sprintf("approval by '%s' ignored: it was for other bytes (%s)", [a.approver, a.root_digest])
}

notes contains msg if {
	some a in valid
	not "approver" in a.roles
	not "security-officer" in a.roles
	msg := sprintf("approval by '%s' ignored: they hold neither approver nor security-officer now", [a.approver])
}

satisfied contains msg if {
	input.tier == "dev"
	msg := "dev needs no approval"
}

satisfied contains msg if {
	input.tier in {"staging", "prod"}
	count(approvers) > 0
	msg := concat("", ["approved by ", approver_names])
}

satisfied contains msg if {
	input.tier == "prod"
	count(officers) > 0
	msg := concat("", ["security-officer approval by ", officer_names])
}

default listed := ""

listed := concat("", [" (", approver_names, ")"]) if count(approvers) > 0

decision := {
	"allowed": count(deny) == 0,
	"reasons": array.concat(sort([m | some m in deny]), sort([m | some m in notes | satisfied])),
}
