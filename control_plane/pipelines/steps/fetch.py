"""The fetch step: copy the data set pinned by digest into the run, refusing it unless its bytes
match the pin; data sets come from the environment's own bucket (or a local file)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from control_plane.emulator.aws import client_kwargs
from control_plane.errors import PipelineFailed
from control_plane.pipelines.config import PipelineConfig, env_blueprint
from control_plane.registry.lineage import LineageError, parse_dataset

_CHUNK = 1 << 20


def copy_hashing(read: Callable[[int], bytes], dest: Path) -> tuple[str, str, int]:
    sha, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    with dest.open("wb") as out:
        while chunk := read(_CHUNK):
            sha.update(chunk)
            md5.update(chunk)
            size += len(chunk)
            out.write(chunk)
    return sha.hexdigest(), md5.hexdigest(), size


def s3_location(uri: str) -> tuple[str, str, str | None]:
    parsed = urlparse(uri)
    version = parse_qs(parsed.query).get("versionId", [None])[0]
    return parsed.netloc, parsed.path.lstrip("/"), version


def s3_client(cfg: PipelineConfig) -> Any:
    import boto3

    return boto3.client("s3", **client_kwargs(env_blueprint(cfg.environment)))


def check_bucket(cfg: PipelineConfig, uri: str, step: str = "fetch") -> None:
    """Data sets come from the environment's own bucket: nothing is read from outside it."""
    bucket = s3_location(uri)[0]
    env = env_blueprint(cfg.environment)
    if bucket != env.registries.model_bucket:
        raise PipelineFailed(f"{step}: {uri} is not in environment {env.name}'s bucket "
                             f"{env.registries.model_bucket}", step=step,
                             hint=f"copy the data set into s3://{env.registries.model_bucket}/datasets/ "
                             "(in-region, encrypted) and pin that object")


def fetch_dataset(ref: str, dest_dir: str | Path, cfg: PipelineConfig) -> dict[str, Any]:
    """Copy the data set ``URI@DIGEST`` into ``dest_dir`` and refuse it unless its bytes match the pin.

    URIs: ``s3://BUCKET/KEY[?versionId=V]`` in the environment's bucket, ``file:///path`` or a path.
    Digests: ``sha256:`` or ``md5:`` (what a DVC ``.dvc`` file records for a file). A ``dvc:`` or
    ``lakefs:`` commit pin is refused with the way to turn it into a content pin."""
    try:
        spec = parse_dataset(ref)
    except LineageError as exc:
        raise PipelineFailed(f"fetch: {exc.message}", step="fetch", hint=exc.hint, exit_code=2) from None
    uri, pinned = spec["uri"], spec["digest"]
    algo, want = next(iter(pinned.items()))
    if algo not in ("sha256", "md5"):
        raise PipelineFailed(
            f"fetch: {ref} pins a {algo}; this step verifies content digests only", step="fetch",
            hint="materialize that revision (dvc get / lakectl fs download), then pin the file by "
            "sha256 (sha256sum FILE)")
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    suffix = Path(urlparse(uri).path).suffix or ".csv"
    dest = dest_dir / f"data{suffix}"
    if uri.startswith("s3://"):
        check_bucket(cfg, uri)
        bucket, key, version = s3_location(uri)
        kwargs: dict[str, str] = {"Bucket": bucket, "Key": key}
        if version:
            kwargs["VersionId"] = version
        try:
            body = s3_client(cfg).get_object(**kwargs)["Body"]
        except Exception as exc:  # botocore's errors carry the code we show
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
            raise PipelineFailed(f"fetch: cannot read {uri} ({code})", step="fetch",
                                 hint="check the object exists in the environment's bucket and the "
                                 "emulator / AWS credentials are reachable") from None
        sha, md5, size = copy_hashing(body.read, dest)
    else:
        src = Path(urlparse(uri).path if uri.startswith("file://") else uri)
        if not src.is_file():
            raise PipelineFailed(f"fetch: {src}: no such file", step="fetch",
                                 hint="pass an existing file, file:///abs/path or s3://bucket/key")
        with src.open("rb") as fh:
            sha, md5, size = copy_hashing(fh.read, dest)
    got = sha if algo == "sha256" else md5
    if got != want:
        dest.unlink(missing_ok=True)
        raise PipelineFailed(
            f"fetch: {uri} has {algo} {got}, the pin says {want}: the data changed since it was pinned",
            step="fetch", hint=f"pin the version you mean to train on (--dataset {uri}@sha256:{sha}), "
            "or restore the pinned data")
    return {"ref": spec["ref"], "uri": uri, "digest": pinned, "sha256": sha, "bytes": size,
            "file": dest.name}
