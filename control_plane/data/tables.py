"""Read a table (CSV, Parquet, JSON Lines) from a local path or an ``s3://bucket/key`` URI."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd

from control_plane.errors import InfraError, MlctlError, NotFound
from control_plane.settings import current as settings

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".json": "jsonl"}


def _format_of(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix not in FORMATS:
        raise MlctlError(
            f"{name}: cannot tell the table format from the suffix {suffix or '(none)'}",
            hint="use a .csv, .parquet or .jsonl file",
            exit_code=2,
        )
    return FORMATS[suffix]


def _s3_client() -> Any:
    import boto3

    # MLCTL_EMULATOR_ENDPOINT points boto3 at the local emulator (tests, `mlctl local up`);
    # otherwise the standard AWS credential chain and region apply.
    kwargs: dict[str, Any] = {"region_name": os.environ.get("AWS_DEFAULT_REGION", "me-central-1")}
    endpoint = settings().emulator_endpoint
    if endpoint:
        kwargs["endpoint_url"] = endpoint
    return boto3.client("s3", **kwargs)


def _read_bytes(uri: str) -> bytes:
    parts = urlsplit(uri)
    bucket, key = parts.netloc, parts.path.lstrip("/")
    if not bucket or not key:
        raise MlctlError(
            f"{uri}: an S3 URI needs a bucket and a key", hint="s3://bucket/path/to/data.parquet", exit_code=2
        )
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        body: bytes = _s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "NoSuchBucket", "404"):
            raise NotFound(f"{uri} does not exist ({code})", hint="check the bucket and key") from None
        raise InfraError(
            f"cannot read {uri}: {code or exc}", hint="check AWS credentials and the bucket policy"
        ) from None
    except BotoCoreError as exc:
        raise InfraError(
            f"cannot read {uri}: {exc}", hint="check the network path and AWS credentials"
        ) from None
    return body


def read_table(uri: str) -> pd.DataFrame:
    """The table at ``uri`` as a DataFrame; errors name the file and the fix."""
    fmt = _format_of(urlsplit(uri).path if uri.startswith("s3://") else uri)
    if uri.startswith("s3://"):
        source: Any = io.BytesIO(_read_bytes(uri))
    else:
        path = Path(uri).expanduser()
        if not path.is_file():
            raise NotFound(
                f"{uri} does not exist", hint="give a CSV, Parquet or JSON Lines file (or s3://bucket/key)"
            )
        source = path
    try:
        if fmt == "csv":
            return pd.read_csv(source)
        if fmt == "jsonl":
            return pd.read_json(source, lines=True)
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise MlctlError(
                "reading Parquet needs pyarrow, which is not installed",
                hint="pip install pyarrow (it is a dependency of sovereign-mlops)",
            ) from None
        return pd.read_parquet(source)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        if isinstance(exc, MlctlError):
            raise
        raise MlctlError(
            f"{uri}: cannot read as {fmt}: {str(exc).splitlines()[0]}",
            hint=f"check that the file is valid {fmt}",
            exit_code=2,
        ) from None
