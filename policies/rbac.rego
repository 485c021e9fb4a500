# Role-based access control for every state-changing mlctl verb. Deny by default: an action is
# allowed only when one of the actor's roles grants it. Queried as data.rbac.decision with input
#   {"actor": "alice", "roles": ["ml-engineer"], "action": "model.sign", "subject": "fraud:3"}
package rbac

import rego.v1

# Separation of duties: whoever builds or ships a model (data-scientist, ml-engineer,
# platform-admin) cannot approve it; approvers and security officers approve and nothing else
# that changes state; auditors only read and export the trail (and signed models, for checking).
grants := {
	"data-scientist": {"model.register"},
	"ml-engineer": {
		"model.register", "model.sign", "model.optimize", "model.validate", "model.export",
		"release", "release.promote", "release.abort", "release.resume", "release.rollback",
		"monitor.drift", "pipeline.run",
	},
	"approver": {"approve"},
	"security-officer": {"approve", "audit.verify", "audit.export", "model.export"},
	"platform-admin": {
		"model.sign", "release", "release.promote", "release.abort", "release.resume", "release.rollback",
		"infra.bootstrap", "infra.apply", "infra.destroy", "local.up", "local.down", "audit.verify",
	},
	"auditor": {"audit.verify", "audit.export", "model.export"},
}

known_actions := {a | actions := grants[_]; some a in actions}

granted_by contains role if {
	some role in input.roles
	input.action in grants[role]
}

default allow := false

allow if count(granted_by) > 0

reasons contains msg if {
	not input.actor
	msg := "no actor: pass --as ID or set MLCTL_ACTOR"
}

reasons contains msg if {
	input.actor
	count(input.roles) == 0
	msg := sprintf("actor '%s' has no roles", [input.actor])
}

role_names := concat(", ", sort(input.roles))

holder_names := concat(", ", sort([r | actions := grants[r]; input.action in actions]))

# Messages are built with concat, not sprintf: rego-cpp 1.5's sprintf wraps strings that come
# from other rules in quotes, which breaks its own JSON output.

reasons contains msg if {
	count(input.roles) > 0
	count(granted_by) == 0
	input.action in known_actions
	msg := concat("", [
		"actor '", input.actor, "' (roles: ", role_names, ") lacks permission '", input.action,
		"' (granted to: ", holder_names, ")",
	])
}

reasons contains msg if {
	not input.action in known_actions
	msg := sprintf("unknown action '%s': no role grants it", [input.action])
}

decision := {
	"allowed": allow,
	"granted_by": sort([r | some r in granted_by]),
	"reasons": sort([r | some r in reasons]),
}
