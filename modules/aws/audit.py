"""Audit: a CloudTrail trail with log-file validation, KMS-encrypted, into the log bucket, and
streamed to a KMS-encrypted CloudWatch Logs group for real-time alerting (metric filters).

Multi-region on purpose: the trail lives in me-central-1 and delivers only there (the log bucket
and the log group are in-region), but it *records* API calls made in every region, so an attempt
to use a region outside the UAE is itself in the audit trail.
"""

from __future__ import annotations

from blueprints.schema import KeyPurpose, Logging
from modules.aws.common import (
    DEFAULT_REGION,
    LogSink,
    log_delivery_role,
    log_retention,
    merged_tags,
)
from modules.aws.kms import own_key
from modules.cdk import Construct, aws


class AuditTrail(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        spec: Logging | None = None,
        kms_key: str | None = None,
        tags: dict[str, str] | None = None,
        logging: LogSink,
        name: str = "mlops",
        region: str = DEFAULT_REGION,
    ) -> None:
        super().__init__(scope, id)
        if not logging.bucket:
            raise ValueError("AuditTrail needs logging=LogSink(bucket=...): the secured log bucket")
        key = kms_key or logging.kms_key_arn or own_key(self, "logs-key", KeyPurpose.logs, name=name, region=region,
                                                        tags=tags)
        retention = log_retention(spec.retention_days if spec else logging.retention_days)
        self.log_group = aws("cloudwatch_log_group").CloudwatchLogGroup(
            self, "trail-logs", name=f"/{name}/cloudtrail", retention_in_days=retention, kms_key_id=key,
            tags=merged_tags(tags, Name=f"{name}-cloudtrail"),
        )
        role = log_delivery_role(self, "trail-logs", role_name=f"{name}-cloudtrail-logs",
                                 service="cloudtrail.amazonaws.com", log_group_arn=self.log_group.arn, tags=tags)
        self.trail = aws("cloudtrail").Cloudtrail(
            self, "trail", name=f"{name}-audit", s3_bucket_name=logging.bucket, s3_key_prefix="cloudtrail",
            kms_key_id=key, enable_log_file_validation=True, include_global_service_events=True,
            is_multi_region_trail=True, enable_logging=True,
            cloud_watch_logs_group_arn=f"{self.log_group.arn}:*", cloud_watch_logs_role_arn=role.arn,
            tags=merged_tags(tags, Name=f"{name}-audit"),
        )
