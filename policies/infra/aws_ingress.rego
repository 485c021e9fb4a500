# No ingress from anywhere (0.0.0.0/0 or ::/0) into any security group.
package infra.aws.ingress

import data.infra.lib
import rego.v1

# ING-001: inline ingress blocks of a security group (and of the default security group).
deny contains lib.finding("UAE-ING-001", sg.address, msg) if {
	some rtype in {"aws_security_group", "aws_default_security_group"}
	some sg in lib.resources_of(rtype)
	some rule in lib.blocks(object.get(sg.config, "ingress", []))
	some cidr in open_cidrs_of(rule, ["cidr_blocks", "ipv6_cidr_blocks"])
	msg := sprintf("security group %s allows ingress from %s (ports %v-%v)", [sg.address, cidr, object.get(rule, "from_port", "?"), object.get(rule, "to_port", "?")])
}

# ING-002: stand-alone rules, old style.
deny contains lib.finding("UAE-ING-002", r.address, msg) if {
	some r in lib.resources_of("aws_security_group_rule")
	r.config.type == "ingress"
	some cidr in open_cidrs_of(r.config, ["cidr_blocks", "ipv6_cidr_blocks"])
	msg := sprintf("security group rule %s allows ingress from %s", [r.address, cidr])
}

# ING-003: stand-alone rules, new style.
deny contains lib.finding("UAE-ING-003", r.address, msg) if {
	some r in lib.resources_of("aws_vpc_security_group_ingress_rule")
	some attr in ["cidr_ipv4", "cidr_ipv6"]
	lib.is_open_cidr(object.get(r.config, attr, ""))
	msg := sprintf("ingress rule %s allows traffic from %s", [r.address, r.config[attr]])
}

open_cidrs_of(rule, attrs) := {c |
	some attr in attrs
	some c in lib.blocks(object.get(rule, attr, []))
	lib.is_open_cidr(c)
}
