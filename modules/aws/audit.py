"""Audit: a CloudTrail trail with log-file validation, KMS-encrypted, into the log bucket.

Single-region on purpose: the trail records me-central-1 (plus global services such as IAM) and its
logs never leave the region.
"""

from __future__ import annotations

from blueprints.schema import KeyPurpose, Logging
from modules.aws.common import DEFAULT_REGION, LogSink, merged_tags
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
        self.trail = aws("cloudtrail").Cloudtrail(
            self, "trail", name=f"{name}-audit", s3_bucket_name=logging.bucket, s3_key_prefix="cloudtrail",
            kms_key_id=key, enable_log_file_validation=True, include_global_service_events=True,
            is_multi_region_trail=False, enable_logging=True, tags=merged_tags(tags, Name=f"{name}-audit"),
        )
