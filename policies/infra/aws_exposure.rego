# No public endpoints: nothing of the platform is reachable from the internet.
package infra.aws.exposure

import data.infra.lib
import rego.v1

# PUB-001: the EKS API is private only.
deny contains lib.finding("UAE-PUB-001", c.address, msg) if {
	some c in lib.resources_of("aws_eks_cluster")
	some vpc in lib.blocks(c.config.vpc_config)
	not lib.is_false(object.get(vpc, "endpoint_public_access", true))
	msg := sprintf("EKS cluster %s has a public API endpoint; set vpc_config.endpoint_public_access = false (AWS defaults it to true)", [c.address])
}

deny contains lib.finding("UAE-PUB-001", c.address, msg) if {
	some c in lib.resources_of("aws_eks_cluster")
	some vpc in lib.blocks(c.config.vpc_config)
	not lib.is_true(object.get(vpc, "endpoint_private_access", false))
	msg := sprintf("EKS cluster %s must enable endpoint_private_access so nodes reach the API inside the VPC", [c.address])
}

# PUB-002: no public IPs.
deny contains lib.finding("UAE-PUB-002", s.address, msg) if {
	some s in lib.resources_of("aws_subnet")
	lib.is_true(object.get(s.config, "map_public_ip_on_launch", false))
	msg := sprintf("subnet %s maps public IPs on launch", [s.address])
}

deny contains lib.finding("UAE-PUB-002", r.address, msg) if {
	some rtype in {"aws_launch_template", "aws_instance"}
	some r in lib.resources_of(rtype)
	public_ip(r.config)
	msg := sprintf("%s associates a public IP address", [r.address])
}

public_ip(config) if lib.is_true(object.get(config, "associate_public_ip_address", false))

public_ip(config) if {
	some ni in lib.blocks(object.get(config, "network_interfaces", []))
	lib.is_true(object.get(ni, "associate_public_ip_address", false))
}

# PUB-003: no public bucket ACLs.
public_acls := {"public-read", "public-read-write", "authenticated-read"}

deny contains lib.finding("UAE-PUB-003", r.address, msg) if {
	some rtype in {"aws_s3_bucket", "aws_s3_bucket_acl"}
	some r in lib.resources_of(rtype)
	r.config.acl in public_acls
	msg := sprintf("%s sets the public ACL %s", [r.address, r.config.acl])
}

# PUB-004: every bucket has a public access block with all four switches on.
pab_flags := ["block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"]

deny contains lib.finding("UAE-PUB-004", b.address, msg) if {
	some b in lib.resources_of("aws_s3_bucket")
	not has_pab(b)
	msg := sprintf("S3 bucket %s has no aws_s3_bucket_public_access_block", [b.address])
}

has_pab(b) if {
	some pab in lib.resources_of("aws_s3_bucket_public_access_block")
	lib.refers_to(pab.config.bucket, b)
}

deny contains lib.finding("UAE-PUB-004", pab.address, msg) if {
	some pab in lib.resources_of("aws_s3_bucket_public_access_block")
	some flag in pab_flags
	not lib.is_true(object.get(pab.config, flag, false))
	msg := sprintf("public access block %s must set %s = true", [pab.address, flag])
}

# PUB-005: a bucket policy that allows everyone with no condition.
deny contains lib.finding("UAE-PUB-005", p.address, msg) if {
	some p in lib.resources_of("aws_s3_bucket_policy")
	is_string(p.config.policy)
	doc := json.unmarshal(p.config.policy)
	some stmt in lib.blocks(doc.Statement)
	stmt.Effect == "Allow"
	anyone(stmt.Principal)
	not stmt.Condition
	msg := sprintf("bucket policy %s allows any principal without a condition", [p.address])
}

anyone("*")

anyone(p) if p.AWS == "*"

anyone(p) if "*" in p.AWS

# PUB-006: databases and load balancers stay internal.
deny contains lib.finding("UAE-PUB-006", r.address, msg) if {
	some rtype in {"aws_db_instance", "aws_rds_cluster_instance"}
	some r in lib.resources_of(rtype)
	lib.is_true(object.get(r.config, "publicly_accessible", false))
	msg := sprintf("%s is publicly accessible", [r.address])
}

deny contains lib.finding("UAE-PUB-006", r.address, msg) if {
	some rtype in {"aws_lb", "aws_alb", "aws_elb"}
	some r in lib.resources_of(rtype)
	not lib.is_true(object.get(r.config, "internal", false))
	msg := sprintf("load balancer %s is internet-facing; set internal = true", [r.address])
}
