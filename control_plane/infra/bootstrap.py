"""The Terraform state backend, created with boto3 before any stack exists (chicken and egg).

The state bucket is locked down like every bucket we render: versioning, default SSE-KMS with a
dedicated rotating state key (alias ``alias/<env>-tfstate``), bucket key, the public access block,
bucket-owner-enforced ownership and a policy denying non-TLS access. Locking is S3-native
(``use_lockfile``), so no DynamoDB table is needed. Running it again re-asserts every setting.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from blueprints.conventions import state_key_alias
from blueprints.schema import Environment
from control_plane.emulator.aws import client_kwargs
from control_plane.errors import InfraError


@dataclass(frozen=True)
class BackendInfo:
    environment: str
    bucket: str
    region: str
    kms_key_arn: str
    created_bucket: bool
    created_key: bool

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _clients(env: Environment) -> tuple[Any, Any, str]:
    import boto3

    kwargs = client_kwargs(env)
    sts = boto3.client("sts", **kwargs)
    account = env.account_id if env.is_local and env.account_id else sts.get_caller_identity()["Account"]
    return boto3.client("kms", **kwargs), boto3.client("s3", **kwargs), account


def _state_key(kms: Any, env: Environment, account: str) -> tuple[str, bool]:
    alias = state_key_alias(env)
    try:
        return kms.describe_key(KeyId=alias)["KeyMetadata"]["Arn"], False
    except kms.exceptions.NotFoundException:
        pass
    root = f"arn:aws:iam::{account}:root"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            # Root delegates to IAM: only principals whose IAM policy allows it read or write state.
            {"Sid": "AccountDelegatesToIam", "Effect": "Allow", "Principal": {"AWS": root},
             "Action": "kms:*", "Resource": "*"},
        ],
    }
    key = kms.create_key(
        Description=f"{env.name}: Terraform state encryption",
        KeyUsage="ENCRYPT_DECRYPT",
        KeySpec="SYMMETRIC_DEFAULT",
        Policy=json.dumps(policy),
        Tags=[{"TagKey": k, "TagValue": v} for k, v in env.tag_map().items()],
    )["KeyMetadata"]
    kms.enable_key_rotation(KeyId=key["KeyId"])
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    return str(key["Arn"]), True


def _state_bucket(s3: Any, env: Environment, key_arn: str) -> bool:
    bucket = env.state.bucket
    created = False
    try:
        s3.head_bucket(Bucket=bucket)
    except s3.exceptions.ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code"))
        if code in ("403", "AccessDenied"):
            raise InfraError(
                f"state bucket {bucket} exists but belongs to someone else or is not readable",
                hint="pick another name under state.bucket in the blueprint",
            ) from None
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": env.region})
        created = True
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={"BlockPublicAcls": True, "IgnorePublicAcls": True,
                                        "BlockPublicPolicy": True, "RestrictPublicBuckets": True},
    )
    s3.put_bucket_ownership_controls(
        Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    )
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={"Rules": [{
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
            "BucketKeyEnabled": True,
        }]},
    )
    if env.is_local:
        # moto limitation: moto evaluates bucket-policy conditions without request context, so a
        # conditional Deny (aws:SecureTransport=false) denies *every* object request and terraform
        # could not read or write its state. The emulator's state bucket therefore goes without the
        # TLS-only policy (it is plain http on 127.0.0.1 anyway); real AWS always gets it.
        return created
    arn = f"arn:aws:s3:::{bucket}"
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                       "Resource": [arn, f"{arn}/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}],
    }))
    return created


def bootstrap(env: Environment) -> BackendInfo:
    """Create (or re-assert) the state bucket and its key for one environment."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        kms, s3, account = _clients(env)
        key_arn, created_key = _state_key(kms, env, account)
        created_bucket = _state_bucket(s3, env, key_arn)
    except NoCredentialsError:
        raise InfraError(
            f"no AWS credentials to create the state backend of {env.name}",
            hint="log in (aws sso login, or set AWS_PROFILE) to the environment's account",
        ) from None
    except (BotoCoreError, ClientError) as exc:
        hint = "check the credentials' permissions (s3:CreateBucket, kms:CreateKey, kms:CreateAlias)"
        if env.is_local:
            hint = "start the AWS emulator first: `mlctl local up` (or set MLCTL_EMULATOR_ENDPOINT)"
        raise InfraError(f"bootstrap of {env.name}'s state backend failed: {exc}", hint=hint) from None
    return BackendInfo(env.name, env.state.bucket, env.region, key_arn, created_bucket, created_key)
