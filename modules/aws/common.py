"""Knobs shared by every AWS construct and small helpers they all need."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modules.aws.posture import assume_role_policy, log_delivery_policy, log_retention, policy_json
from modules.cdk import Construct, aws

__all__ = ["DEFAULT_REGION", "LogSink", "account_id", "assume_role_policy", "log_delivery_role", "log_retention",
           "merged_tags", "policy_json"]

DEFAULT_REGION = "me-central-1"  # UAE residency: the only AWS region we render


@dataclass(frozen=True)
class LogSink:
    """Where a construct sends its logs: CloudWatch retention + key, and/or an S3 log bucket."""

    retention_days: int = 365
    kms_key_arn: str | None = None
    bucket: str | None = None  # S3 server access logs / CloudTrail target (bucket name)


def merged_tags(tags: dict[str, str] | None, **extra: str) -> dict[str, str]:
    return {**(tags or {}), **extra}


def account_id(scope: Construct) -> str:
    """The caller's account id, read at plan time (never hard-coded into production stacks)."""
    ident: Any = scope.node.try_find_child("caller")
    if ident is None:
        ident = aws("data_aws_caller_identity").DataAwsCallerIdentity(scope, "caller")
    return str(ident.account_id)


def log_delivery_role(
    scope: Construct, id: str, *, role_name: str, service: str, log_group_arn: str, tags: dict[str, str] | None
) -> Any:
    """The role ``service`` (VPC flow logs, CloudTrail) assumes to write into one log group:
    constructs ``<id>-role`` and ``<id>-policy`` (its inline policy, modules/aws/posture.py)."""
    role = aws("iam_role").IamRole(
        scope, f"{id}-role", name=role_name, assume_role_policy=assume_role_policy(service), tags=tags
    )
    aws("iam_role_policy").IamRolePolicy(
        scope, f"{id}-policy", role=role.id, policy=log_delivery_policy(service, log_group_arn)
    )
    return role
