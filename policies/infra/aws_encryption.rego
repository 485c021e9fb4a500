# Encryption at rest with customer-managed KMS keys on every AWS storage and log resource.
package infra.aws.encryption

import data.infra.lib
import rego.v1

kms_algorithms := {"aws:kms", "aws:kms:dsse"}

# ENC-001: every bucket has a default SSE-KMS configuration with a key.
deny contains lib.finding("UAE-ENC-001", b.address, msg) if {
	some b in lib.resources_of("aws_s3_bucket")
	not bucket_sse_kms(b)
	msg := sprintf("S3 bucket %s has no default SSE-KMS encryption with a customer-managed key (aws_s3_bucket_server_side_encryption_configuration)", [b.address])
}

bucket_sse_kms(b) if {
	some cfg in lib.resources_of("aws_s3_bucket_server_side_encryption_configuration")
	lib.refers_to(cfg.config.bucket, b)
	sse_rule_is_kms(cfg.config)
}

sse_rule_is_kms(config) if {
	some rule in lib.blocks(config.rule)
	some sse in lib.blocks(rule.apply_server_side_encryption_by_default)
	sse.sse_algorithm in kms_algorithms
	sse.kms_master_key_id
}

# ENC-002: an SSE configuration that is not KMS (AES256) or has no key.
deny contains lib.finding("UAE-ENC-002", cfg.address, msg) if {
	some cfg in lib.resources_of("aws_s3_bucket_server_side_encryption_configuration")
	not sse_rule_is_kms(cfg.config)
	msg := sprintf("%s must use sse_algorithm aws:kms with kms_master_key_id (a customer-managed key), not S3-managed keys", [cfg.address])
}

# ENC-003: log groups encrypted with a KMS key.
deny contains lib.finding("UAE-ENC-003", lg.address, msg) if {
	some lg in lib.resources_of("aws_cloudwatch_log_group")
	not lg.config.kms_key_id
	msg := sprintf("CloudWatch log group %s has no kms_key_id; encrypt it with the logs key", [lg.address])
}

# ENC-004: EBS volumes, launch template and instance disks encrypted.
deny contains lib.finding("UAE-ENC-004", lt.address, msg) if {
	some lt in lib.resources_of("aws_launch_template")
	some bdm in lib.blocks(object.get(lt.config, "block_device_mappings", []))
	some ebs in lib.blocks(object.get(bdm, "ebs", []))
	not lib.is_true(object.get(ebs, "encrypted", false))
	msg := sprintf("launch template %s maps an EBS volume (%v) without encrypted = true", [lt.address, object.get(bdm, "device_name", "?")])
}

deny contains lib.finding("UAE-ENC-004", lt.address, msg) if {
	some lt in lib.resources_of("aws_launch_template")
	count(lib.blocks(object.get(lt.config, "block_device_mappings", []))) == 0
	msg := sprintf("launch template %s declares no block_device_mappings, so the root volume is not encrypted with our key", [lt.address])
}

deny contains lib.finding("UAE-ENC-004", v.address, msg) if {
	some v in lib.resources_of("aws_ebs_volume")
	not lib.is_true(object.get(v.config, "encrypted", false))
	msg := sprintf("EBS volume %s is not encrypted", [v.address])
}

deny contains lib.finding("UAE-ENC-004", i.address, msg) if {
	some i in lib.resources_of("aws_instance")
	some d in lib.blocks(object.get(i.config, "root_block_device", {"encrypted": false}))
	not lib.is_true(object.get(d, "encrypted", false))
	msg := sprintf("instance %s has an unencrypted root volume", [i.address])
}

# ENC-005: ECR repositories encrypted with KMS.
deny contains lib.finding("UAE-ENC-005", repo.address, msg) if {
	some repo in lib.resources_of("aws_ecr_repository")
	not ecr_kms(repo.config)
	msg := sprintf("ECR repository %s must use encryption_type KMS with a customer-managed kms_key", [repo.address])
}

ecr_kms(config) if {
	some enc in lib.blocks(config.encryption_configuration)
	enc.encryption_type == "KMS"
	enc.kms_key
}

# ENC-006: EKS envelope-encrypts Kubernetes secrets.
deny contains lib.finding("UAE-ENC-006", c.address, msg) if {
	some c in lib.resources_of("aws_eks_cluster")
	not eks_secrets_encrypted(c.config)
	msg := sprintf("EKS cluster %s has no encryption_config for secrets with a KMS key", [c.address])
}

eks_secrets_encrypted(config) if {
	some enc in lib.blocks(config.encryption_config)
	"secrets" in enc.resources
	some p in lib.blocks(enc.provider)
	p.key_arn
}

# ENC-007: CloudTrail logs encrypted with KMS.
deny contains lib.finding("UAE-ENC-007", t.address, msg) if {
	some t in lib.resources_of("aws_cloudtrail")
	not t.config.kms_key_id
	msg := sprintf("CloudTrail %s has no kms_key_id; encrypt the trail with the logs key", [t.address])
}

# ENC-008: symmetric keys rotate (asymmetric signing keys cannot, by AWS design).
deny contains lib.finding("UAE-ENC-008", k.address, msg) if {
	some k in lib.resources_of("aws_kms_key")
	object.get(k.config, "customer_master_key_spec", "SYMMETRIC_DEFAULT") == "SYMMETRIC_DEFAULT"
	not lib.is_true(object.get(k.config, "enable_key_rotation", false))
	msg := sprintf("KMS key %s is symmetric but enable_key_rotation is not true", [k.address])
}

# ENC-009: databases and file systems encrypted at rest.
encrypted_flag := {
	"aws_db_instance": "storage_encrypted",
	"aws_rds_cluster": "storage_encrypted",
	"aws_efs_file_system": "encrypted",
	"aws_sqs_queue": "kms_master_key_id",
	"aws_sns_topic": "kms_master_key_id",
}

deny contains lib.finding("UAE-ENC-009", r.address, msg) if {
	some rtype, flag in encrypted_flag
	some r in lib.resources_of(rtype)
	not encryption_set(object.get(r.config, flag, null))
	msg := sprintf("%s must set %s (encryption at rest with a KMS key)", [r.address, flag])
}

encryption_set(v) if lib.is_true(v)

encryption_set(v) if {
	is_string(v)
	v != "false"
	v != ""
}
