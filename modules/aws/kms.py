"""KMS: one customer-managed key per purpose, with explicit least-privilege key policies.

Key administration is separate from key use. Use is granted to the account root, which delegates
to IAM policies (only principals whose IAM policy allows it can use a key), and, where an AWS
service acts without an IAM identity of ours (CloudWatch Logs, CloudTrail, the EC2 Auto Scaling
service-linked role for encrypted volumes), to that service with conditions pinning it to this
account and region.
"""

from __future__ import annotations

from typing import Any

from blueprints.schema import KeyPurpose, Kms
from modules.aws.common import DEFAULT_REGION, LogSink, account_id, merged_tags, policy_json
from modules.cdk import Construct, aws

_ADMIN_ACTIONS = [
    "kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*",
    "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource", "kms:UntagResource",
    "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion", "kms:RotateKeyOnDemand",
]  # fmt: skip
_CRYPT_ACTIONS = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
_DESCRIPTIONS = {
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


def make_key(
    scope: Construct,
    id: str,
    purpose: KeyPurpose,
    *,
    name: str,
    region: str,
    deletion_window_days: int = 30,
    admins: list[str] | None = None,
    tags: dict[str, str] | None = None,
) -> Any:
    """One customer-managed key with its policy and alias ``alias/<name>-<purpose>``."""
    signing = purpose is KeyPurpose.signing
    key = aws("kms_key").KmsKey(
        scope,
        id,
        description=f"{name}: {_DESCRIPTIONS[purpose]}",
        key_usage="SIGN_VERIFY" if signing else "ENCRYPT_DECRYPT",
        customer_master_key_spec="ECC_NIST_P256" if signing else "SYMMETRIC_DEFAULT",
        # AWS cannot rotate asymmetric key material; signing keys are rotated by re-keying.
        enable_key_rotation=not signing,
        deletion_window_in_days=deletion_window_days,
        policy=key_policy(purpose, account=account_id(scope), region=region, admins=admins or []),
        tags=merged_tags(tags, Name=f"{name}-{purpose}", Purpose=str(purpose)),
    )
    aws("kms_alias").KmsAlias(scope, f"{id}-alias", name=f"alias/{name}-{purpose}", target_key_id=key.key_id)
    return key


class KeyRing(Construct):
    """The environment's customer-managed keys, one per purpose, each with an alias
    ``alias/<name>-<purpose>``. Symmetric keys rotate yearly; the signing key is ECC_NIST_P256."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        spec: Kms | None = None,
        kms_key: str | None = None,  # unused: a key ring makes keys; kept for the shared shape
        tags: dict[str, str] | None = None,
        logging: LogSink | None = None,
        name: str = "mlops",
        region: str = DEFAULT_REGION,
    ) -> None:
        super().__init__(scope, id)
        spec = spec or Kms()
        self.keys: dict[KeyPurpose, Any] = {
            purpose: make_key(
                self,
                f"{purpose}-key",
                purpose,
                name=name,
                region=region,
                deletion_window_days=spec.deletion_window_days,
                admins=list(spec.admin_principals),
                tags=tags,
            )
            for purpose in spec.purposes
        }

    def arn(self, purpose: KeyPurpose) -> str:
        return str(self.keys[purpose].arn)


def own_key(scope: Construct, id: str, purpose: KeyPurpose, *, name: str, region: str,
            tags: dict[str, str] | None) -> str:
    """A dedicated key for a construct used without ``kms_key`` (secure with no arguments)."""
    return str(make_key(scope, id, purpose, name=f"{name}-{id}", region=region, tags=tags).arn)
