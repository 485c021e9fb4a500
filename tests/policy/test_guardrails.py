"""The Rego guardrails rule by rule, on a small hand-written stack (fast; no synth, no checkov).
The acceptance tests in test_gate.py run the same rules on the real synthesized stacks."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from control_plane.policy.findings import StackFile
from control_plane.policy.guardrails import run_guardrails
from control_plane.policy.infra_gate import INFRA_POLICIES_DIR

KEY = "${aws_kms_key.logs.arn}"
SECURE: dict[str, Any] = {
    "provider": {"aws": [{"region": "me-central-1"}]},
    "terraform": {"backend": {"s3": {"bucket": "state", "key": "k", "region": "me-central-1"}}},
    "resource": {
        "aws_kms_key": {
            "logs": {"enable_key_rotation": True},
            "signing": {"customer_master_key_spec": "ECC_NIST_P256", "key_usage": "SIGN_VERIFY"},
        },
        "aws_s3_bucket": {"models": {"bucket": "uae-models"}},
        "aws_s3_bucket_server_side_encryption_configuration": {
            "models_sse": {
                "bucket": "${aws_s3_bucket.models.id}",
                "rule": [
                    {
                        "apply_server_side_encryption_by_default": {
                            "sse_algorithm": "aws:kms",
                            "kms_master_key_id": KEY,
                        },
                        "bucket_key_enabled": True,
                    }
                ],
            }
        },
        "aws_s3_bucket_public_access_block": {
            "models_pab": {
                "bucket": "${aws_s3_bucket.models.id}",
                "block_public_acls": True,
                "block_public_policy": True,
                "ignore_public_acls": True,
                "restrict_public_buckets": True,
            }
        },
        "aws_s3_bucket_policy": {
            "models_tls": {
                "bucket": "${aws_s3_bucket.models.id}",
                "policy": json.dumps(
                    {
                        "Statement": [
                            {
                                "Effect": "Deny",
                                "Principal": "*",
                                "Action": "s3:*",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        ]
                    }
                ),
            }
        },
        "aws_cloudwatch_log_group": {"flow": {"name": "/vpc/flow", "kms_key_id": KEY}},
        "aws_subnet": {"serving_a": {"availability_zone": "me-central-1a", "cidr_block": "10.40.0.0/21"}},
        "aws_security_group": {
            "serving": {
                "ingress": [
                    {"from_port": 443, "to_port": 443, "protocol": "tcp", "cidr_blocks": ["10.40.0.0/16"]}
                ]
            }
        },
        "aws_default_security_group": {"default": {"ingress": [], "egress": []}},
        "aws_vpc_security_group_ingress_rule": {
            "serving_443": {
                "cidr_ipv4": "10.40.0.0/16",
                "from_port": 443,
                "to_port": 443,
                "ip_protocol": "tcp",
            }
        },
        "aws_security_group_rule": {
            "data_5432": {
                "type": "ingress",
                "cidr_blocks": ["10.40.16.0/20"],
                "from_port": 5432,
                "to_port": 5432,
            }
        },
        "aws_ecr_repository": {
            "triton": {"encryption_configuration": [{"encryption_type": "KMS", "kms_key": KEY}]}
        },
        "aws_eks_cluster": {
            "main": {
                "vpc_config": {"endpoint_private_access": True, "endpoint_public_access": False},
                "encryption_config": {"resources": ["secrets"], "provider": {"key_arn": KEY}},
            }
        },
        "aws_launch_template": {
            "gpu": {
                "block_device_mappings": [
                    {"device_name": "/dev/xvda", "ebs": {"encrypted": "true", "kms_key_id": KEY}}
                ],
                "metadata_options": {"http_tokens": "required", "http_put_response_hop_limit": 1},
            }
        },
        "aws_cloudtrail": {"audit": {"kms_key_id": KEY, "enable_log_file_validation": True}},
        "aws_vpc_endpoint": {"s3": {"service_name": "com.amazonaws.me-central-1.s3"}},
    },
}


def _run(tmp_path: Path, doc: dict[str, Any]) -> list[tuple[str, str]]:
    path = tmp_path / "stack" / "cdk.tf.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(doc))
    findings = run_guardrails([StackFile(name="stack", path=path)], INFRA_POLICIES_DIR)
    return sorted((f.id, f.resource) for f in findings)


def test_secure_stack_has_no_findings(tmp_path: Path) -> None:
    assert _run(tmp_path, SECURE) == []


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node: Any = doc
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
        if value is _DELETE:
            del node[last]
        elif isinstance(node, list):
            node[int(last) : int(last) + 1] = [value]  # replaces, or appends one past the end
        else:
            node[last] = value

    return change


_DELETE = object()
R = "resource"

VIOLATIONS = [
    # residency
    ("provider-eu-west-1", _set("provider/aws/0/region", "eu-west-1"), "UAE-RES-001", "provider.aws"),
    (
        "provider-alias-us",
        _set("provider/aws/1", {"alias": "us", "region": "us-east-1"}),
        "UAE-RES-001",
        "provider.aws (alias us)",
    ),
    ("provider-no-region", _set("provider/aws/0/region", _DELETE), "UAE-RES-002", "provider.aws"),
    (
        "state-in-frankfurt",
        _set("terraform/backend/s3/region", "eu-central-1"),
        "UAE-RES-003",
        "terraform.backend.s3",
    ),
    (
        "subnet-in-bahrain",
        _set(f"{R}/aws_subnet/serving_a/availability_zone", "me-south-1a"),
        "UAE-RES-004",
        "aws_subnet.serving_a",
    ),
    (
        "arn-in-ireland",
        _set(f"{R}/aws_cloudtrail/audit/kms_key_id", "arn:aws:kms:eu-west-1:1:key/x"),
        "UAE-RES-005",
        "aws_cloudtrail.audit",
    ),
    (
        "azure-westeurope",
        _set(f"{R}/azurerm_storage_account/sa", {"location": "westeurope"}),
        "UAE-RES-004",
        "azurerm_storage_account.sa",
    ),
    (
        "arn-in-govcloud",
        _set(f"{R}/aws_cloudtrail/audit/kms_key_id", "arn:aws-us-gov:kms:us-gov-west-1:1:key/x"),
        "UAE-RES-005",
        "aws_cloudtrail.audit",
    ),
    # encryption
    (
        "sse-aes256",
        _set(
            f"{R}/aws_s3_bucket_server_side_encryption_configuration/models_sse/rule/0/apply_server_side_encryption_by_default/sse_algorithm",
            "AES256",
        ),
        "UAE-ENC-001",
        "aws_s3_bucket.models",
    ),
    # CDKTF drops snake_case keys of plain dicts handed to jsii: an empty rule must not pass
    (
        "sse-rule-empty",
        _set(f"{R}/aws_s3_bucket_server_side_encryption_configuration/models_sse/rule", [{}]),
        "UAE-ENC-002",
        "aws_s3_bucket_server_side_encryption_configuration.models_sse",
    ),
    (
        "ecr-config-empty",
        _set(f"{R}/aws_ecr_repository/triton/encryption_configuration", [{}]),
        "UAE-ENC-005",
        "aws_ecr_repository.triton",
    ),
    (
        "sse-missing",
        _set(f"{R}/aws_s3_bucket_server_side_encryption_configuration", _DELETE),
        "UAE-ENC-001",
        "aws_s3_bucket.models",
    ),
    (
        "log-group-plain",
        _set(f"{R}/aws_cloudwatch_log_group/flow/kms_key_id", _DELETE),
        "UAE-ENC-003",
        "aws_cloudwatch_log_group.flow",
    ),
    (
        "ebs-plain",
        _set(f"{R}/aws_launch_template/gpu/block_device_mappings/0/ebs/encrypted", False),
        "UAE-ENC-004",
        "aws_launch_template.gpu",
    ),
    (
        "ecr-aes",
        _set(f"{R}/aws_ecr_repository/triton/encryption_configuration", [{"encryption_type": "AES256"}]),
        "UAE-ENC-005",
        "aws_ecr_repository.triton",
    ),
    (
        "eks-secrets-plain",
        _set(f"{R}/aws_eks_cluster/main/encryption_config", _DELETE),
        "UAE-ENC-006",
        "aws_eks_cluster.main",
    ),
    (
        "trail-plain",
        _set(f"{R}/aws_cloudtrail/audit/kms_key_id", _DELETE),
        "UAE-ENC-007",
        "aws_cloudtrail.audit",
    ),
    (
        "key-no-rotation",
        _set(f"{R}/aws_kms_key/logs/enable_key_rotation", False),
        "UAE-ENC-008",
        "aws_kms_key.logs",
    ),
    (
        "rds-plain",
        _set(f"{R}/aws_db_instance/db", {"storage_encrypted": False}),
        "UAE-ENC-009",
        "aws_db_instance.db",
    ),
    # public exposure
    (
        "eks-public",
        _set(f"{R}/aws_eks_cluster/main/vpc_config/endpoint_public_access", True),
        "UAE-PUB-001",
        "aws_eks_cluster.main",
    ),
    (
        "eks-public-default",
        _set(f"{R}/aws_eks_cluster/main/vpc_config/endpoint_public_access", _DELETE),
        "UAE-PUB-001",
        "aws_eks_cluster.main",
    ),
    (
        "subnet-public-ip",
        _set(f"{R}/aws_subnet/serving_a/map_public_ip_on_launch", True),
        "UAE-PUB-002",
        "aws_subnet.serving_a",
    ),
    (
        "lt-public-ip",
        _set(f"{R}/aws_launch_template/gpu/network_interfaces", [{"associate_public_ip_address": "true"}]),
        "UAE-PUB-002",
        "aws_launch_template.gpu",
    ),
    (
        "bucket-acl",
        _set(
            f"{R}/aws_s3_bucket_acl/models_acl",
            {"bucket": "${aws_s3_bucket.models.id}", "acl": "public-read"},
        ),
        "UAE-PUB-003",
        "aws_s3_bucket_acl.models_acl",
    ),
    (
        "pab-off",
        _set(f"{R}/aws_s3_bucket_public_access_block/models_pab/block_public_policy", False),
        "UAE-PUB-004",
        "aws_s3_bucket_public_access_block.models_pab",
    ),
    (
        "pab-missing",
        _set(f"{R}/aws_s3_bucket_public_access_block", _DELETE),
        "UAE-PUB-004",
        "aws_s3_bucket.models",
    ),
    (
        "policy-anyone",
        _set(
            f"{R}/aws_s3_bucket_policy/models_tls/policy",
            json.dumps(
                {"Statement": {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:GetObject"}}
            ),
        ),
        "UAE-PUB-005",
        "aws_s3_bucket_policy.models_tls",
    ),
    ("lb-internet", _set(f"{R}/aws_lb/api", {"internal": False}), "UAE-PUB-006", "aws_lb.api"),
    # open ingress
    (
        "sg-inline-world",
        _set(f"{R}/aws_security_group/serving/ingress/0/cidr_blocks", ["0.0.0.0/0"]),
        "UAE-ING-001",
        "aws_security_group.serving",
    ),
    (
        "default-sg-v6",
        _set(f"{R}/aws_default_security_group/default/ingress", [{"ipv6_cidr_blocks": ["::/0"]}]),
        "UAE-ING-001",
        "aws_default_security_group.default",
    ),
    (
        "sg-rule-world",
        _set(f"{R}/aws_security_group_rule/data_5432/cidr_blocks", ["10.0.0.0/8", "0.0.0.0/0"]),
        "UAE-ING-002",
        "aws_security_group_rule.data_5432",
    ),
    (
        "ingress-rule-world",
        _set(f"{R}/aws_vpc_security_group_ingress_rule/serving_443/cidr_ipv4", "0.0.0.0/0"),
        "UAE-ING-003",
        "aws_vpc_security_group_ingress_rule.serving_443",
    ),
    (
        "ingress-rule-v6",
        _set(f"{R}/aws_vpc_security_group_ingress_rule/v6", {"cidr_ipv6": "::/0"}),
        "UAE-ING-003",
        "aws_vpc_security_group_ingress_rule.v6",
    ),
]


@pytest.mark.parametrize(
    ("change", "rule", "resource"), [v[1:] for v in VIOLATIONS], ids=[v[0] for v in VIOLATIONS]
)
def test_each_violation_is_named(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], rule: str, resource: str
) -> None:
    doc = copy.deepcopy(SECURE)
    change(doc)
    found = _run(tmp_path, doc)
    assert (rule, resource) in found, found


def test_egress_rules_to_anywhere_are_not_ingress(tmp_path: Path) -> None:
    doc = copy.deepcopy(SECURE)
    _set(f"{R}/aws_security_group_rule/out", {"type": "egress", "cidr_blocks": ["0.0.0.0/0"]})(doc)
    assert _run(tmp_path, doc) == []
