"""The tools-image steps of the build Job: ``fetch`` (download + verify) and ``upload``.

Run as ``python -m control_plane.optimize.job_steps fetch|upload`` inside the Job, configured by
the environment variables the Job sets (SOURCE_URI, OUTPUT_PREFIX, AWS_REGION, KMS_KEY_ID).
Credentials come from IRSA (the pod's web identity token), never from the spec.
These variables (and BUILD_WORKDIR) are the Job container's interface, set in the Job spec the
control plane renders; they are not mlctl settings (those are ``MLCTL_*``, read in
``control_plane.settings`` alone), so this entry point reads them itself.

Layout of a build's input prefix (written by the control plane before it submits the Job)::

    <SOURCE_URI>/model/...            the registered model files, exactly as signed
    <SOURCE_URI>/signature/bundle.json
    <SOURCE_URI>/signature/signer.pub
    <SOURCE_URI>/validation.json      validation samples (Polygraphy --load-inputs format)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from control_plane.signing import verify_model

WORK = Path(os.environ.get("BUILD_WORKDIR", "/work"))


def split_s3(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"not an s3:// URI: {uri}")
    return parsed.netloc, parsed.path.lstrip("/").rstrip("/")


def _client() -> Any:
    import boto3

    kwargs: dict[str, Any] = {"region_name": os.environ.get("AWS_REGION")}
    if os.environ.get("AWS_ENDPOINT_URL"):
        kwargs["endpoint_url"] = os.environ["AWS_ENDPOINT_URL"]
    return boto3.client("s3", **kwargs)


def download_prefix(s3: Any, uri: str, dest: Path) -> list[Path]:
    bucket, prefix = split_s3(uri)
    got: list[Path] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        for obj in page.get("Contents", []):
            rel = obj["Key"][len(prefix) + 1 :]
            target = (dest / rel).resolve()
            if not str(target).startswith(str(dest.resolve())):
                raise ValueError(f"refusing object key outside the build prefix: {obj['Key']}")
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, obj["Key"], str(target))
            got.append(target)
    return got


def fetch() -> None:
    s3 = _client()
    incoming = WORK / "in"
    download_prefix(s3, os.environ["SOURCE_URI"], incoming)
    bundle = (incoming / "signature" / "bundle.json").read_bytes()
    public_key = (incoming / "signature" / "signer.pub").read_bytes()
    verified = verify_model(incoming / "model", bundle, public_key)  # raises, naming the file
    onnx_files = sorted((incoming / "model").glob("*.onnx"))
    if len(onnx_files) != 1:
        raise SystemExit(f"expected exactly one .onnx file in the model, found {len(onnx_files)}")
    os.link(onnx_files[0], incoming / "model.onnx")
    print(f"fetched and verified {len(verified.files)} file(s), root {verified.root_digest}")


def upload() -> None:
    s3 = _client()
    bucket, prefix = split_s3(os.environ["OUTPUT_PREFIX"])
    extra = {"ServerSideEncryption": "aws:kms"}
    if os.environ.get("KMS_KEY_ID"):
        extra["SSEKMSKeyId"] = os.environ["KMS_KEY_ID"]
    for name in ("model.plan", "result.json"):
        s3.upload_file(str(WORK / "out" / name), bucket, f"{prefix}/{name}", ExtraArgs=extra)
    print(f"uploaded plan and result to s3://{bucket}/{prefix}/")


def main(argv: list[str]) -> int:
    steps = {"fetch": fetch, "upload": upload}
    if len(argv) != 1 or argv[0] not in steps:
        print("usage: python -m control_plane.optimize.job_steps fetch|upload", file=sys.stderr)
        return 2
    steps[argv[0]]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
