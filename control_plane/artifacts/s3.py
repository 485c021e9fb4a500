"""S3 artifact store: the environment's model bucket, every object SSE-KMS with the environment's
artifacts key (``alias/<env>-artifacts``), multipart uploads for large files.

Each file is streamed through a hashing reader, so the SHA-256 recorded is that of the bytes
actually uploaded; a file that changes between hashing and upload is refused and its objects
removed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from control_plane.artifacts.base import (
    HashingReader,
    changed_during_upload,
    check_relpath,
    missing_from_store,
    verify_fetched,
)
from control_plane.emulator.aws import client_kwargs
from control_plane.errors import InfraError, NotFound

if TYPE_CHECKING:
    from blueprints.schema import Environment

MiB = 1 << 20


def _client_error(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", "")) or str(exc)


class S3ArtifactStore:
    kind = "s3"

    def __init__(
        self,
        env: Environment,
        *,
        bucket: str | None = None,
        kms_key: str | None = None,
        multipart_threshold: int = 64 * MiB,
        multipart_chunksize: int = 64 * MiB,
        client: Any = None,
    ) -> None:
        import boto3
        from boto3.s3.transfer import TransferConfig

        self.env = env
        self.bucket = bucket or env.registries.model_bucket
        self.kms_key = kms_key or f"alias/{env.name}-artifacts"
        self._kwargs = client_kwargs(env)
        self.s3 = client or boto3.client("s3", **self._kwargs)
        self.transfer = TransferConfig(
            multipart_threshold=multipart_threshold, multipart_chunksize=multipart_chunksize, max_concurrency=4
        )
        self._checked = False
        self._key_arn = self.kms_key

    def _preflight(self) -> None:
        """Fail early, with the fix, when the bucket or the key the blueprint names is not there."""
        if self._checked:
            return
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.s3.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            raise InfraError(
                f"model bucket s3://{self.bucket} is not reachable ({_client_error(exc)})",
                hint="apply the environment's infrastructure (mlctl infra apply) or fix registries.model_bucket",
            ) from None
        except BotoCoreError as exc:
            raise InfraError(f"cannot reach S3 for s3://{self.bucket}: {exc}",
                             hint="check AWS credentials and network (or `mlctl local up` for the emulator)") from None
        try:
            meta = boto3.client("kms", **self._kwargs).describe_key(KeyId=self.kms_key)["KeyMetadata"]
        except ClientError as exc:
            raise InfraError(
                f"KMS key {self.kms_key} for SSE-KMS is not usable ({_client_error(exc)})",
                hint="apply the environment's infrastructure (mlctl infra apply) so the artifacts key exists",
            ) from None
        if meta.get("KeyState", "Enabled") != "Enabled":
            raise InfraError(f"KMS key {self.kms_key} is {meta.get('KeyState')}",
                             hint="enable the artifacts key (or cancel its deletion) before storing models")
        # Objects name the concrete key (its ARN), not the alias: re-pointing the alias later must not
        # change what an object's metadata says it was encrypted with.
        self._key_arn = str(meta.get("Arn") or self.kms_key)
        self._checked = True

    def uri(self, prefix: str) -> str:
        return f"s3://{self.bucket}/{check_relpath(prefix)}"

    def exists(self, prefix: str) -> bool:
        return bool(self.list_keys(prefix))

    def _extra(self, sha256: str | None = None) -> dict[str, Any]:
        extra: dict[str, Any] = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self._key_arn}
        if sha256:
            extra["Metadata"] = {"sha256": sha256}
        return extra

    def put_dir(self, src: Path, prefix: str, files: Mapping[str, str]) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        self._preflight()
        try:
            for rel, expected in sorted(files.items()):
                key = f"{prefix}/{check_relpath(rel)}"
                with (src / rel).open("rb") as fh:
                    reader = HashingReader(fh)
                    # A reader without seek() makes s3transfer read parts in order, so the hash is of
                    # exactly the bytes sent.
                    self.s3.upload_fileobj(reader, self.bucket, key, ExtraArgs=self._extra(expected),
                                           Config=self.transfer)
                actual = reader.sha256.hexdigest()
                if actual != expected:
                    raise changed_during_upload(rel, expected, actual)
        except (ClientError, BotoCoreError) as exc:
            self.delete_prefix(prefix)
            raise InfraError(f"upload to {self.uri(prefix)} failed: {_client_error(exc)}",
                             hint="check the bucket policy and that this identity may use the KMS key") from None
        except BaseException:
            self.delete_prefix(prefix)
            raise
        return self.uri(prefix)

    def get_dir(self, prefix: str, dest: Path, files: Mapping[str, str]) -> Path:
        from botocore.exceptions import BotoCoreError, ClientError

        dest.mkdir(parents=True, exist_ok=True)
        for rel, expected in sorted(files.items()):
            target = dest / check_relpath(rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                self.s3.download_file(self.bucket, f"{prefix}/{rel}", str(target), Config=self.transfer)
            except ClientError as exc:
                code = _client_error(exc)
                if code in ("404", "NoSuchKey", "NotFound"):
                    raise missing_from_store(rel, self.uri(prefix)) from None
                raise InfraError(f"download of {self.uri(prefix)}/{rel} failed: {code}",
                                 hint="check credentials and kms:Decrypt on the artifacts key") from None
            except BotoCoreError as exc:
                raise InfraError(f"download of {self.uri(prefix)}/{rel} failed: {exc}",
                                 hint="check network access to S3") from None
            verify_fetched(target, rel, expected, self.uri(prefix))
        return dest

    def list_keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        paginator = self.s3.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix.rstrip("/") + "/"):
                keys.extend(obj["Key"] for obj in page.get("Contents", []))
        except Exception as exc:  # botocore raises several unrelated types here
            if _client_error(exc) == "NoSuchBucket":
                raise NotFound(f"bucket {self.bucket} does not exist", hint="run mlctl infra apply") from None
            raise
        return sorted(keys)

    def delete_prefix(self, prefix: str) -> None:
        keys = self.list_keys(prefix)
        for i in range(0, len(keys), 1000):
            self.s3.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in keys[i : i + 1000]], "Quiet": True}
            )

    def put_blob(self, key: str, data: bytes) -> str:
        self._preflight()
        import hashlib

        self.s3.put_object(Bucket=self.bucket, Key=check_relpath(key), Body=data,
                           **self._extra(hashlib.sha256(data).hexdigest()))
        return f"s3://{self.bucket}/{key}"
