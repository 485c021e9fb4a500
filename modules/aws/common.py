"""Knobs shared by every AWS construct and small helpers they all need."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from modules.cdk import Construct, aws

DEFAULT_REGION = "me-central-1"  # UAE residency: the only AWS region we render


@dataclass(frozen=True)
class LogSink:
    """Where a construct sends its logs: CloudWatch retention + key, and/or an S3 log bucket."""

    retention_days: int = 365
    kms_key_arn: str | None = None
    bucket: str | None = None  # S3 server access logs / CloudTrail target (bucket name)


# CloudWatch Logs accepts only these retention values; a blueprint's ">= 365" is rounded up.
_RETENTION_STEPS = (365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)


def log_retention(days: int) -> int:
    return next((d for d in _RETENTION_STEPS if d >= days), _RETENTION_STEPS[-1])


def merged_tags(tags: dict[str, str] | None, **extra: str) -> dict[str, str]:
    return {**(tags or {}), **extra}


def policy_json(statements: list[dict[str, Any]]) -> str:
    """An IAM/KMS/S3 policy document; cdktf tokens inside strings survive json.dumps."""
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def account_id(scope: Construct) -> str:
    """The caller's account id, read at plan time (never hard-coded into production stacks)."""
    ident: Any = scope.node.try_find_child("caller")
    if ident is None:
        ident = aws("data_aws_caller_identity").DataAwsCallerIdentity(scope, "caller")
    return str(ident.account_id)


def assume_role_policy(service: str) -> str:
    return policy_json(
        [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]
    )
