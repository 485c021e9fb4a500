"""The security posture of every AWS resource we render, in one backend-neutral place.

Both renderers of a blueprint read it: the CDKTF constructs in ``modules/aws`` and the Pulumi
components in ``stacks/pulumi``. Nothing here imports cdktf or pulumi, so the policies and settings
are plain values (JSON text, dicts of Terraform attribute names); each renderer passes them in its
own syntax. ``tests/pulumi/test_parity.py`` then proves the two rendered inventories agree.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from blueprints.schema import KeyPurpose


def policy_json(statements: list[dict[str, Any]]) -> str:
    """An IAM/KMS/S3 policy document; cdktf tokens and Pulumi-resolved ARNs inside strings survive."""
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def assume_role_policy(service: str) -> str:
    return policy_json(
        [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]
    )


# What a service that delivers logs into a CloudWatch Logs group may do there (least privilege),
# and on what: (actions, ARN suffixes of the group). VPC flow logs also describe the group's streams;
# CloudTrail only writes to them.
_LOG_DELIVERY: dict[str, tuple[list[str], tuple[str, ...]]] = {
    "vpc-flow-logs.amazonaws.com": (
        ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"], ("", ":*")),
    "cloudtrail.amazonaws.com": (["logs:CreateLogStream", "logs:PutLogEvents"], (":*",)),
}


def log_delivery_policy(service: str, log_group_arn: str) -> str:
    """The inline policy of ``service``'s log-delivery role: write into that one log group only."""
    actions, suffixes = _LOG_DELIVERY[service]
    return policy_json([{"Effect": "Allow", "Action": actions,
                         "Resource": [f"{log_group_arn}{suffix}" for suffix in suffixes]}])


# CloudWatch Logs accepts only these retention values; a blueprint's ">= 365" is rounded up.
_RETENTION_STEPS = (365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)


def log_retention(days: int) -> int:
    return next((d for d in _RETENTION_STEPS if d >= days), _RETENTION_STEPS[-1])



# ---- KMS: one customer-managed key per purpose -------------------------------------------------
_ADMIN_ACTIONS = [
    "kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*",
    "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource", "kms:UntagResource",
    "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion", "kms:RotateKeyOnDemand",
]  # fmt: skip
_CRYPT_ACTIONS = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
KEY_DESCRIPTIONS = {
    KeyPurpose.artifacts: "model artifacts: S3 registry buckets and ECR repositories",
    KeyPurpose.cluster: "Kubernetes secrets envelope encryption and node volumes",
    KeyPurpose.logs: "flow logs, control-plane logs and CloudTrail",
    KeyPurpose.signing: "ECC P-256 key that signs models and audit checkpoints",
}


def key_policy(purpose: KeyPurpose, *, account: str, region: str, admins: list[str]) -> str:
    root = f"arn:aws:iam::{account}:root"
    statements: list[dict[str, Any]] = [
        {
            "Sid": "KeyAdministration",
            "Effect": "Allow",
            "Principal": {"AWS": admins or [root]},
            "Action": _ADMIN_ACTIONS,
            "Resource": "*",
        }
    ]
    if purpose is KeyPurpose.signing:
        statements.append(
            {
                "Sid": "SignThroughIamPolicies",
                "Effect": "Allow",
                "Principal": {"AWS": root},
                "Action": ["kms:Sign", "kms:Verify", "kms:GetPublicKey", "kms:DescribeKey"],
                "Resource": "*",
            }
        )
        return policy_json(statements)
    via = {
        KeyPurpose.artifacts: [f"s3.{region}.amazonaws.com", f"ecr.{region}.amazonaws.com"],
        KeyPurpose.cluster: [f"eks.{region}.amazonaws.com", f"ec2.{region}.amazonaws.com"],
        KeyPurpose.logs: [f"logs.{region}.amazonaws.com", f"s3.{region}.amazonaws.com"],
    }[purpose]
    statements.append(
        {
            "Sid": "UseThroughIamPoliciesViaServices",
            "Effect": "Allow",
            "Principal": {"AWS": root},
            "Action": [*_CRYPT_ACTIONS, "kms:CreateGrant"],
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:ViaService": via, "kms:CallerAccount": account}},
        }
    )
    if purpose is KeyPurpose.cluster:
        # Encrypted EBS volumes of managed node groups are created by the Auto Scaling
        # service-linked role, which no IAM policy of ours can reach: grant it through EC2 only.
        statements.append(
            {
                "Sid": "EncryptedNodeVolumesViaEc2",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": [*_CRYPT_ACTIONS, "kms:CreateGrant"],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {"kms:CallerAccount": account, "kms:ViaService": f"ec2.{region}.amazonaws.com"}
                },
            }
        )
    if purpose is KeyPurpose.logs:
        statements += [
            {
                "Sid": "CloudWatchLogsOfThisAccount",
                "Effect": "Allow",
                "Principal": {"Service": f"logs.{region}.amazonaws.com"},
                "Action": _CRYPT_ACTIONS,
                "Resource": "*",
                "Condition": {
                    "ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{region}:{account}:*"}
                },
            },
            {
                "Sid": "CloudTrailOfThisAccount",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": ["kms:GenerateDataKey*", "kms:DescribeKey"],
                "Resource": "*",
                "Condition": {
                    "StringLike": {
                        "kms:EncryptionContext:aws:cloudtrail:arn": f"arn:aws:cloudtrail:*:{account}:trail/*"
                    },
                    "StringEquals": {"aws:SourceAccount": account},
                },
            },
        ]
    return policy_json(statements)



def key_settings(purpose: KeyPurpose) -> dict[str, Any]:
    """Usage, spec and rotation of a key: symmetric keys rotate yearly; AWS cannot rotate asymmetric
    key material, so the ECC P-256 signing key is rotated by re-keying."""
    signing = purpose is KeyPurpose.signing
    return {
        "key_usage": "SIGN_VERIFY" if signing else "ENCRYPT_DECRYPT",
        "customer_master_key_spec": "ECC_NIST_P256" if signing else "SYMMETRIC_DEFAULT",
        "enable_key_rotation": not signing,
    }


# ---- S3 ------------------------------------------------------------------------------------------
PUBLIC_ACCESS_BLOCK = {"block_public_acls": True, "block_public_policy": True, "ignore_public_acls": True,
                       "restrict_public_buckets": True}
ACCESS_LOG_PREFIX = "s3-access/"


def bucket_policy(bucket_arn: str, extra: list[dict[str, Any]] | None = None) -> str:
    return policy_json([
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": {"AWS": "*"},  # same as "*" on AWS; moto crashes on a string principal
            "Action": "s3:*",
            "Resource": [bucket_arn, f"{bucket_arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
        {
            # A put may omit the header (default SSE-KMS applies) but may not ask for SSE-S3 or none.
            "Sid": "DenyPutsNotEncryptedWithKms",
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "s3:PutObject",
            "Resource": f"{bucket_arn}/*",
            "Condition": {"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": "aws:kms"}},
        },
        *(extra or []),
    ])



# ---- network -------------------------------------------------------------------------------------
INTERFACE_ENDPOINTS = ("ecr.api", "ecr.dkr", "sts", "kms", "logs", "ec2", "eks")


def split_cidr(cidr: ipaddress.IPv4Network, parts: int) -> list[ipaddress.IPv4Network]:
    """``parts`` equal subnets of ``cidr`` (rounded up to a power of two); the rest stays free."""
    extra_bits = (parts - 1).bit_length()
    return list(cidr.subnets(prefixlen_diff=extra_bits))[:parts]


# ---- cluster -------------------------------------------------------------------------------------
CONTROL_PLANE_LOGS = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
TAINT_EFFECT = {"NoSchedule": "NO_SCHEDULE", "NoExecute": "NO_EXECUTE", "PreferNoSchedule": "PREFER_NO_SCHEDULE"}
CLUSTER_POLICIES = ["AmazonEKSClusterPolicy"]
NODE_POLICIES = ["AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryReadOnly", "AmazonEKS_CNI_Policy"]
# IMDSv2 only, hop limit 1: pods cannot reach the node's credentials.
NODE_METADATA_OPTIONS = {"http_endpoint": "enabled", "http_tokens": "required", "http_put_response_hop_limit": 1}
