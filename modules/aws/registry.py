"""Registry: the model-artifact bucket, its access-log bucket and the ECR repositories.

Both buckets get the same treatment: versioning, default SSE-KMS with an S3 bucket key, the public
access block, object ownership enforced (no ACLs), a policy that denies non-TLS requests and puts
that ask for anything but SSE-KMS, noncurrent-version expiry, and object lock (governance mode).
The log bucket is also the sink for CloudTrail, so its policy admits CloudTrail and S3 server
access logging from this account only.
"""

from __future__ import annotations

from typing import Any

from blueprints.schema import KeyPurpose, Registries
from modules.aws.common import DEFAULT_REGION, LogSink, account_id, merged_tags
from modules.aws.kms import own_key
from modules.aws.posture import ACCESS_LOG_PREFIX, PUBLIC_ACCESS_BLOCK, bucket_policy
from modules.cdk import Construct, aws


class SecureBucket(Construct):
    """One S3 bucket with every control above. ``log_to`` is the bucket receiving its access logs."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        bucket: str,
        kms_key_arn: str,
        object_lock_days: int,
        noncurrent_days: int,
        log_to: SecureBucket | None,
        extra_policy: list[dict[str, Any]] | None = None,
        tags: dict[str, str] | None = None,
        ephemeral: bool = False,
        default_retention: bool = True,
    ) -> None:
        super().__init__(scope, id)
        self.bucket = aws("s3_bucket").S3Bucket(
            self, "bucket", bucket=bucket, object_lock_enabled=True, tags=merged_tags(tags, Name=bucket),
            # Only an emulator environment may be emptied on destroy (moto writes access-log
            # objects into the log bucket); real audit logs and models are never force-deleted.
            force_destroy=ephemeral,
        )
        b = self.bucket.id
        aws("s3_bucket_public_access_block").S3BucketPublicAccessBlock(
            self, "public-access-block", bucket=b, **PUBLIC_ACCESS_BLOCK
        )
        aws("s3_bucket_ownership_controls").S3BucketOwnershipControls(
            self, "ownership", bucket=b, rule={"object_ownership": "BucketOwnerEnforced"}
        )
        versioning = aws("s3_bucket_versioning").S3BucketVersioningA(
            self, "versioning", bucket=b, versioning_configuration={"status": "Enabled"}
        )
        sse = aws("s3_bucket_server_side_encryption_configuration")
        self.encryption = sse.S3BucketServerSideEncryptionConfigurationA(
            self, "encryption", bucket=b,
            # Struct classes, not dicts: jsii drops dicts in lists that hold cross-stack tokens.
            rule=[sse.S3BucketServerSideEncryptionConfigurationRuleA(
                apply_server_side_encryption_by_default=sse.S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(
                    sse_algorithm="aws:kms", kms_master_key_id=kms_key_arn
                ),
                bucket_key_enabled=True,
            )],
        )
        self.policy = aws("s3_bucket_policy").S3BucketPolicy(
            self, "policy", bucket=b, policy=bucket_policy(self.bucket.arn, extra_policy)
        )
        lc = aws("s3_bucket_lifecycle_configuration")
        lc.S3BucketLifecycleConfiguration(
            self, "lifecycle", bucket=b, depends_on=[versioning],
            # Struct classes: in plain dicts inside lists jsii silently drops multi_word keys.
            rule=[lc.S3BucketLifecycleConfigurationRule(
                id="expire-noncurrent-versions",
                status="Enabled",
                filter=[lc.S3BucketLifecycleConfigurationRuleFilter(prefix="")],
                noncurrent_version_expiration=[
                    lc.S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration(noncurrent_days=noncurrent_days)
                ],
                abort_incomplete_multipart_upload=[
                    lc.S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload(days_after_initiation=7)
                ],
            )],
        )
        self.object_lock: Any = None
        if default_retention:
            self.object_lock = aws("s3_bucket_object_lock_configuration").S3BucketObjectLockConfigurationA(
                self, "object-lock", bucket=b, depends_on=[versioning],
                rule={"default_retention": {"mode": "GOVERNANCE", "days": object_lock_days}},
            )
        if log_to:
            # One flat prefix for every bucket: moto only accepts a logging grant whose resource is
            # exactly <prefix>*; the log lines name their source bucket anyway.
            aws("s3_bucket_logging").S3BucketLoggingA(
                self, "access-logging", bucket=b, target_bucket=log_to.name, target_prefix=ACCESS_LOG_PREFIX,
                # The log bucket must admit the logging service, encrypt and lock before the first
                # log object lands (moto also refuses object lock on a bucket that holds objects).
                depends_on=[d for d in (log_to.policy, log_to.encryption, log_to.object_lock) if d is not None],
            )

    @property
    def name(self) -> str:
        return str(self.bucket.id)

    @property
    def arn(self) -> str:
        return str(self.bucket.arn)


class ModelRegistry(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        spec: Registries,
        kms_key: str | None = None,
        tags: dict[str, str] | None = None,
        logging: LogSink | None = None,
        name: str = "mlops",
        region: str = DEFAULT_REGION,
        ephemeral: bool = False,
    ) -> None:
        super().__init__(scope, id)
        logging = logging or LogSink()
        artifacts_key = kms_key or own_key(self, "artifacts-key", KeyPurpose.artifacts, name=name, region=region,
                                           tags=tags)
        logs_key = logging.kms_key_arn or own_key(self, "logs-key", KeyPurpose.logs, name=name, region=region,
                                                  tags=tags)
        account = account_id(self)
        log_arn = f"arn:aws:s3:::{spec.log_bucket}"
        sinks = [
            {
                "Sid": "S3ServerAccessLogs",
                "Effect": "Allow",
                "Principal": {"Service": "logging.s3.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": f"{log_arn}/{ACCESS_LOG_PREFIX}*",
                "Condition": {"StringEquals": {"aws:SourceAccount": account}},
            },
            {
                "Sid": "CloudTrailAclCheck",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:GetBucketAcl",
                "Resource": log_arn,
                "Condition": {"StringEquals": {"aws:SourceAccount": account}},
            },
            {
                "Sid": "CloudTrailWrite",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": f"{log_arn}/cloudtrail/AWSLogs/{account}/*",
                "Condition": {"StringEquals": {"aws:SourceAccount": account,
                                               "s3:x-amz-acl": "bucket-owner-full-control"}},
            },
        ]
        self.log_bucket = SecureBucket(
            self, "log-bucket", bucket=spec.log_bucket, kms_key_arn=logs_key,
            object_lock_days=spec.object_lock_days, noncurrent_days=spec.noncurrent_version_days,
            log_to=None, extra_policy=sinks, tags=tags, ephemeral=ephemeral,
            # On the emulator the log bucket keeps object lock enabled but without a default
            # retention rule: moto delivers access logs into it and then refuses to remove a
            # retention rule from a non-empty bucket, so destroy could never finish.
            default_retention=not ephemeral,
        )
        self.model_bucket = SecureBucket(
            self, "model-bucket", bucket=spec.model_bucket, kms_key_arn=artifacts_key,
            object_lock_days=spec.object_lock_days, noncurrent_days=spec.noncurrent_version_days,
            log_to=self.log_bucket, tags=tags, ephemeral=ephemeral,
        )
        ecr = aws("ecr_repository")
        self.repositories = {
            repo: ecr.EcrRepository(
                self, f"ecr-{repo.replace('/', '-')}", name=repo, image_tag_mutability="IMMUTABLE",
                image_scanning_configuration={"scan_on_push": True},
                encryption_configuration=[ecr.EcrRepositoryEncryptionConfiguration(encryption_type="KMS",
                                                                                   kms_key=artifacts_key)],
                tags=merged_tags(tags, Name=repo),
            )
            for repo in spec.container_repositories
        }
