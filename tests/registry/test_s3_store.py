"""The S3 artifact store on the AWS emulator: SSE-KMS on every object (checked with boto3),
multipart for large files, per-file SHA-256, a clear error when the key is missing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import boto3
import pytest

from control_plane import registry
from control_plane.artifacts import S3ArtifactStore
from control_plane.errors import InfraError
from tests.registry.conftest import make_model

MiB = 1 << 20


@pytest.fixture()
def s3_env(aws_emulator: str) -> tuple[object, str]:
    """The uae-local environment's bucket and artifacts key on the emulator (created here when the
    infra stacks have not been applied), with a per-test environment name so tests never share."""
    import uuid

    from blueprints.loader import load_environment
    from control_plane.settings import DEFAULT_BLUEPRINT

    env = load_environment(DEFAULT_BLUEPRINT)
    env = env.model_copy(update={
        "name": f"t{uuid.uuid4().hex[:8]}",
        "registries": env.registries.model_copy(update={"model_bucket": f"models-{uuid.uuid4().hex[:12]}"}),
    })
    kw = {"region_name": "me-central-1", "endpoint_url": aws_emulator}
    boto3.client("s3", **kw).create_bucket(
        Bucket=env.registries.model_bucket, CreateBucketConfiguration={"LocationConstraint": "me-central-1"})
    kms = boto3.client("kms", **kw)
    key_id = kms.create_key(Description="artifacts")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=f"alias/{env.name}-artifacts", TargetKeyId=key_id)
    return env, key_id


def test_register_to_s3_is_sse_kms_multipart_and_verifiable(
    s3_env: tuple[object, str], aws_emulator: str, roles: Path, act_as: Callable[[str], None], tmp_path: Path,
) -> None:
    env, key_id = s3_env
    act_as("eli")
    model = make_model(tmp_path / "model")
    (model / "weights" / "big.bin").write_bytes(bytes(range(256)) * (12 * MiB // 256))  # 12 MiB: 3 parts
    store = S3ArtifactStore(env, multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)  # type: ignore[arg-type]
    config = tmp_path / "c.yaml"
    config.write_text("a: 1\n")
    mv = registry.register("fraud", "1", model, store=store, code_commit="abcdef1", config=config)
    bucket = env.registries.model_bucket  # type: ignore[attr-defined]
    assert mv.artifact_uri == f"s3://{bucket}/models/fraud/1/{mv.root_hex}"

    s3 = boto3.client("s3", region_name="me-central-1", endpoint_url=aws_emulator)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert len(keys) == len(mv.files) + 1  # the model files and the archived config
    for key in keys:
        head = s3.head_object(Bucket=bucket, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms", key
        assert key_id in head["SSEKMSKeyId"], key
    big = s3.head_object(Bucket=bucket, Key=f"models/fraud/1/{mv.root_hex}/weights/big.bin")
    assert big["ETag"].strip('"').endswith("-3")  # uploaded in three parts
    assert big["Metadata"]["sha256"] == mv.files["weights/big.bin"]

    # verify the artifact-store copy (downloaded from S3) against the signature
    from control_plane.signing import LocalSigner

    registry.sign("fraud", "1")
    assert LocalSigner().key_id == registry.get_version("fraud", "1").signature.key_id
    result = registry.verify("fraud", "1")  # downloads from S3, checks digests and signature
    assert result.source.startswith(f"artifact store s3://{bucket}/") and result.files == len(mv.files)
    out = registry.materialize("fraud", "1", tmp_path / "out")
    assert (out / "weights" / "big.bin").read_bytes() == (model / "weights" / "big.bin").read_bytes()


def test_missing_kms_key_is_a_clear_error(aws_emulator: str, roles: Path, act_as: Callable[[str], None],
                                          tmp_path: Path) -> None:
    from blueprints.loader import load_environment
    from control_plane.settings import DEFAULT_BLUEPRINT

    base = load_environment(DEFAULT_BLUEPRINT)
    # its own bucket: the emulator is shared by the whole session
    registries = base.registries.model_copy(update={"model_bucket": "no-such-env-artifacts"})
    env = base.model_copy(update={"name": "no-such-env", "registries": registries})
    boto3.client("s3", region_name="me-central-1", endpoint_url=aws_emulator).create_bucket(
        Bucket=env.registries.model_bucket, CreateBucketConfiguration={"LocationConstraint": "me-central-1"})
    act_as("eli")
    with pytest.raises(InfraError, match="alias/no-such-env-artifacts") as exc:
        registry.register("m", "1", make_model(tmp_path / "m"), store=S3ArtifactStore(env), code_commit="abcdef1")
    assert "mlctl infra apply" in (exc.value.hint or "")
    assert registry.list_versions() == []
