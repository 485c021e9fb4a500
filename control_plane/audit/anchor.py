"""Anchoring signed tree heads in the environment's object-locked audit bucket.

Each head is written once to ``s3://<registries.log_bucket>/audit-heads/<log>/<size>.json`` with
S3 Object Lock in COMPLIANCE mode: until the retention date nobody, the account root included, can
overwrite or delete it. Rolling the database and ``$MLCTL_HOME`` back to an old copy therefore
cannot roll the bucket back, and verification compares the local tree with the newest head there.

Object keys carry the size zero-padded, so the newest head is the last key in listing order.
On the emulator (moto) the bucket is created with Object Lock when missing and anchoring is
explicit (``MLCTL_AUDIT_ANCHOR=s3``): COMPLIANCE-locked objects would keep ``infra destroy`` of an
emulated environment from emptying its log bucket. On a real cloud the bucket must come from the
blueprint (``mlctl infra apply``); it is checked, never created here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from control_plane.audit.heads import SignedHead
from control_plane.emulator.aws import client_kwargs
from control_plane.errors import InfraError

PREFIX = "audit-heads"


def head_key(log: str, size: int, root: str) -> str:
    # Size and root are in the name: a listing alone tells verification every anchored (size, root),
    # and a forked head (same size, other root) lands beside the original instead of shadowing it
    # as a newer version of the same key.
    return f"{PREFIX}/{log}/{size:012d}-{root}.json"


@dataclass(frozen=True)
class Listed:
    size: int
    root: str
    key: str


@dataclass
class S3Anchor:
    bucket: str
    retention_days: int
    client: Any
    emulated: bool

    @classmethod
    def for_environment(cls, env: Any, client: Any = None) -> S3Anchor:
        if str(env.cloud) != "aws":
            raise InfraError(
                f"anchoring audit heads is implemented for AWS S3 Object Lock; environment '{env.name}' is on "
                f"{env.cloud}",
                hint="set MLCTL_AUDIT_ANCHOR=off (heads stay in the database and $MLCTL_HOME only) or point "
                "MLCTL_AUDIT_BLUEPRINT at an AWS environment",
            )
        if client is None:
            import boto3  # lazy: boto3 (~0.3 s), only for the S3 anchor

            client = boto3.client("s3", **client_kwargs(env))
        return cls(bucket=env.registries.log_bucket, retention_days=env.logging.retention_days, client=client,
                   emulated=env.is_local)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _fail(self, what: str, exc: Exception, hint: str) -> InfraError:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "") if hasattr(exc, "response") else ""
        return InfraError(f"audit bucket {self.bucket}: {what} failed: {code or exc}", hint=hint)

    def ensure_bucket(self, *, create: bool) -> None:
        """Check the bucket exists with Object Lock enabled; on the emulator create it if asked."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
                raise self._fail("HeadBucket", exc, "check credentials and s3:ListBucket on the audit bucket") from None
            if not (create and self.emulated):
                raise InfraError(
                    f"the audit bucket {self.bucket} does not exist",
                    hint="apply the environment's blueprint (mlctl infra apply) so that its object-locked log "
                    "bucket exists",
                ) from None
            region = self.client.meta.region_name
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "ObjectLockEnabledForBucket": True}
            if region and region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
            self.client.create_bucket(**kwargs)
        except BotoCoreError as exc:
            raise self._fail("HeadBucket", exc, "check network access to S3 (or `mlctl local up`)") from None
        try:
            lock = self.client.get_object_lock_configuration(Bucket=self.bucket)["ObjectLockConfiguration"]
        except ClientError as exc:
            raise InfraError(
                f"the audit bucket {self.bucket} has no Object Lock ({exc.response.get('Error', {}).get('Code')})",
                hint="the blueprint's log bucket is created with object_lock_enabled; re-create it from the blueprint",
            ) from None
        if lock.get("ObjectLockEnabled") != "Enabled":
            raise InfraError(f"the audit bucket {self.bucket} does not have Object Lock enabled",
                             hint="re-create it from the blueprint (object lock cannot be added later on AWS)")

    def put(self, head: SignedHead) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        key = head_key(head.log, head.size, head.root)
        until = datetime.now(UTC) + timedelta(days=self.retention_days)
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=key, Body=(head.to_json() + "\n").encode(),
                ContentType="application/json", ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until,
                # Object Lock puts need an integrity checksum; SSE-KMS is the bucket's policy.
                ChecksumAlgorithm="SHA256", ServerSideEncryption="aws:kms",
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._fail(f"writing {key}", exc, "check s3:PutObject and s3:PutObjectRetention on the audit "
                             "bucket, and kms:GenerateDataKey on its key") from None
        return self.uri(key)

    def listing(self, log: str) -> tuple[list[Listed], list[str]]:
        """Every anchored head of ``log`` as named in the bucket, and the names that are not heads."""
        from botocore.exceptions import BotoCoreError, ClientError

        prefix = f"{PREFIX}/{log}/"
        out: list[Listed] = []
        odd: list[str] = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    name = obj["Key"][len(prefix):]
                    size, _, rest = name.partition("-")
                    root = rest.removesuffix(".json")
                    if size.isdigit() and len(root) == 64 and rest.endswith(".json"):
                        out.append(Listed(int(size), root, obj["Key"]))
                    else:
                        odd.append(self.uri(obj["Key"]))
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("listing anchored heads", exc, "check s3:ListBucket on the audit bucket") from None
        return out, odd

    def fetch(self, key: str) -> SignedHead | None:
        """The head stored under ``key``; None when the object is not a signed head."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise self._fail(f"reading {key}", exc, "check s3:GetObject on the audit bucket") from None
        try:
            return SignedHead.from_json(body)
        except (ValueError, KeyError, TypeError):
            return None
