"""The verifier that runs inside a model-server pod: ``python -m control_plane.signing.verify_pod``.

It is the InferenceService's ``storage-initializer`` (see ``control_plane.kserve.render``): it
downloads the model from the registry bucket into the pod's model volume, then verifies exactly
those bytes against the version's OpenSSF bundle (``model.sig`` beside the model in the bucket),
with the pinned hashing configuration and a public key the environment trusts, before the model
server can start. Because it is the only thing that writes the model volume and the model server
mounts it read-only, the bytes that serve are the bytes that were verified, at every pod start,
restart and scale-up, whatever happened to the bucket after the release gate.

Any mismatch exits non-zero with the file named, on stderr and in the container's termination
message (``/dev/termination-log``), which KServe copies into the InferenceService's
``status.modelStatus.lastFailureInfo``; the release engine then sees the release fail with that
message.

Without ``--storage-uri`` it verifies a directory already in place (another downloader, or a copy an
auditor holds). Dependencies are small on purpose: ``cryptography`` and, to download, ``boto3``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from control_plane.errors import InfraError, MlctlError, VerificationFailed
from control_plane.signing import dsse
from control_plane.signing.bundle import verify_model
from control_plane.signing.digests import PINNED, SIGNATURE_FILENAME
from control_plane.signing.keys import key_fingerprint, load_p256_public_key, upstream_key_hint

DEFAULT_MODEL_DIR = "/mnt/models"  # KServe's model mount (constants.DefaultModelLocalMountPath)
DEFAULT_TRUSTED_KEYS = "/etc/mlctl/trusted-keys"  # the trusted-keys ConfigMap, mounted read-only
TERMINATION_LOG = "/dev/termination-log"  # the kubelet's default terminationMessagePath
_TERMINATION_LIMIT = 4000  # the kubelet keeps at most 4096 bytes of a termination message


@dataclass(frozen=True)
class TrustedKey:
    source: str  # the file it came from
    pem: bytes
    key_id: str  # sha256:<hex> of the SubjectPublicKeyInfo
    hint: str  # model-signing's key hint, as written into bundles


def load_trusted_keys(directory: Path | None, files: Sequence[Path] = ()) -> list[TrustedKey]:
    """Every PEM public key in ``directory`` (a mounted ConfigMap: one key per entry) and ``files``.

    ConfigMap mounts hold ``..data`` symlinks and hidden ``..<timestamp>`` directories beside the
    keys; only visible regular entries count. A file that is not a P-256 public key is refused
    rather than skipped: a broken trust store should stop the pod, not silently narrow trust.
    """
    paths: list[Path] = list(files)
    if directory is not None:
        if not directory.is_dir():
            raise VerificationFailed(
                f"trusted keys directory {directory} does not exist",
                hint="mount the environment's trusted-keys ConfigMap there (docs/kubernetes.md)",
            )
        paths += sorted(p for p in directory.iterdir() if not p.name.startswith(".") and p.is_file())
    keys: list[TrustedKey] = []
    for path in paths:
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise VerificationFailed(f"trusted key {path} cannot be read: {exc.strerror}",
                                     hint="fix the trusted-keys ConfigMap") from None
        try:
            load_p256_public_key(pem)
        except VerificationFailed as exc:
            raise VerificationFailed(f"trusted key {path}: {exc.message}",
                                     hint="fix the trusted-keys ConfigMap: one PEM P-256 public key per entry") from None
        keys.append(TrustedKey(str(path), pem, key_fingerprint(pem), upstream_key_hint(pem)))
    if not keys:
        raise VerificationFailed(
            "no trusted public key: nothing can be verified, so nothing is served",
            hint="put the environment's signing public key (PEM) into the trusted-keys ConfigMap "
            "(docs/kubernetes.md), or pass --public-key FILE",
        )
    return keys


def choose_key(bundle: bytes, keys: Sequence[TrustedKey]) -> TrustedKey:
    """The trusted key the bundle says signed it (its key hint); refused when none matches."""
    try:
        hint = dsse.read_bundle(bundle).key_hint
    except dsse.FormatError as exc:
        raise VerificationFailed(f"{SIGNATURE_FILENAME} cannot be read: {exc}",
                                 hint="re-publish the signature: mlctl model sign NAME:V") from None
    for key in keys:
        if key.hint == hint:
            return key
    raise VerificationFailed(
        f"{SIGNATURE_FILENAME} was signed by a key this environment does not trust "
        f"(bundle key hint {str(hint)[:16]}…; trusted: {', '.join(k.key_id[:23] + '…' for k in keys)})",
        hint="serve only models signed with the environment's key; add a key to the trusted-keys "
        "ConfigMap only if it is meant to be trusted",
    )


def _s3_location(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise MlctlError(f"--storage-uri {uri!r} is not an s3:// URI", hint="pass s3://BUCKET/PREFIX",
                         exit_code=2)
    bucket, _, prefix = uri[len("s3://"):].partition("/")
    prefix = prefix.strip("/")
    if not bucket or not prefix:
        raise MlctlError(f"--storage-uri {uri!r} names no prefix", hint="pass s3://BUCKET/PREFIX", exit_code=2)
    return bucket, prefix


def _safe_relpath(key: str, rel: str) -> str:
    """An object key below the prefix as a path that stays inside the model directory."""
    parts = PurePosixPath(rel).parts
    if not parts or rel.startswith("/") or ".." in parts or "\\" in rel:
        raise VerificationFailed(f"'{key}' would be written outside the model directory; refused",
                                 hint="remove the object from the registry bucket")
    return rel


def _empty(directory: Path) -> None:
    """Start from an empty model volume: an init container restarted after a crash must not verify
    (or serve) what a previous attempt left behind."""
    directory.mkdir(parents=True, exist_ok=True)
    for entry in directory.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def download(uri: str, model_dir: Path, *, client: Any = None) -> tuple[bytes, int]:
    """Every object under ``uri`` into ``model_dir``, except ``model.sig``, which is returned.

    Everything under the prefix is fetched, not just the files the signature lists: an object added
    to the bucket must show up as an extra file (and be refused), never be left out of the check.
    Credentials and region come from the pod (IRSA); ``AWS_ENDPOINT_URL`` points it elsewhere.
    """
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = _s3_location(uri)
    s3 = client or boto3.client("s3")
    _empty(model_dir)
    bundle: bytes | None = None
    count = 0
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
            for obj in page.get("Contents", []):
                rel = obj["Key"][len(prefix) + 1:]
                if rel == SIGNATURE_FILENAME:
                    bundle = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                    continue
                if not rel or rel.endswith("/"):
                    continue  # a "folder" placeholder object holds no bytes
                target = model_dir / _safe_relpath(obj["Key"], rel)
                target.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, obj["Key"], str(target))
                count += 1
    except (ClientError, BotoCoreError) as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "") or str(exc)
        raise InfraError(f"cannot download {uri}: {code}",
                         hint="the pod's service account (IRSA) needs s3:GetObject/ListBucket on the model "
                         "bucket and kms:Decrypt on the artifacts key") from None
    if count == 0:
        raise VerificationFailed(f"{uri} holds no model files", hint="release a registered model version")
    if bundle is None:
        raise VerificationFailed(
            f"{SIGNATURE_FILENAME} is missing beside the model at {uri}/{SIGNATURE_FILENAME}",
            hint="sign the version (mlctl model sign NAME:V publishes model.sig to the bucket)",
        )
    return bundle, count


@dataclass(frozen=True)
class PodVerification:
    model_dir: str
    root_digest: str  # sha256:<hex>
    files: int
    key_id: str
    key_source: str

    def as_dict(self) -> dict[str, Any]:
        return {"verified": True, "model_dir": self.model_dir, "root_digest": self.root_digest,
                "files": self.files, "key_id": self.key_id, "key_source": self.key_source}


def verify_directory(
    model_dir: Path, bundle: bytes, keys: Sequence[TrustedKey], *, expected_digest: str | None = None
) -> PodVerification:
    """Verify ``model_dir`` against ``bundle`` with a trusted key and the pinned configuration; and,
    when given, that it is the released version (``expected_digest``): a validly signed *other*
    version copied over this one (a rollback) is refused too."""
    key = choose_key(bundle, keys)
    verified = verify_model(model_dir, bundle, key.pem, config=PINNED)
    root = f"sha256:{verified.root_digest}"
    if expected_digest is not None and root != expected_digest:
        raise VerificationFailed(
            f"the bucket holds another signed model (root {root[:23]}…), not the released one "
            f"({expected_digest[:23]}…)",
            hint="the registry bucket was altered after the release: restore the version's objects",
        )
    return PodVerification(str(model_dir), root, len(verified.files), key.key_id, key.source)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m control_plane.signing.verify_pod",
        description="Download a model (optional) and verify it against its OpenSSF signature bundle "
        "before the model server starts.",
        epilog="example: python -m control_plane.signing.verify_pod --storage-uri "
        "s3://bucket/models/fraud/3/<root> --model-dir /mnt/models --expected-digest sha256:<root>",
    )
    p.add_argument("--storage-uri", help="s3://BUCKET/PREFIX to download first (the InferenceService's storageUri)")
    p.add_argument("--model-dir", type=Path, default=Path(DEFAULT_MODEL_DIR),
                   help=f"the model directory to verify (default {DEFAULT_MODEL_DIR})")
    p.add_argument("--signature", type=Path,
                   help=f"the bundle file (default: {SIGNATURE_FILENAME} from the bucket, or in --model-dir)")
    p.add_argument("--trusted-keys", type=Path,
                   help=f"directory of trusted PEM public keys (default {DEFAULT_TRUSTED_KEYS} when it exists)")
    p.add_argument("--public-key", type=Path, action="append", default=[],
                   help="a trusted PEM public key file (repeatable)")
    p.add_argument("--expected-digest", help="sha256:<hex> root digest of the released version")
    p.add_argument("--termination-log", type=Path, default=Path(TERMINATION_LOG),
                   help="where to write the failure for Kubernetes (default /dev/termination-log)")
    return p


def _report_failure(message: str, termination_log: Path) -> None:
    print(message, file=sys.stderr)
    try:
        if termination_log.parent.is_dir():
            termination_log.write_text(message[:_TERMINATION_LIMIT])
    except OSError:
        pass  # outside a pod (or a read-only path): stderr already has it


def run(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        trusted_dir = args.trusted_keys
        if trusted_dir is None and not args.public_key and Path(DEFAULT_TRUSTED_KEYS).is_dir():
            trusted_dir = Path(DEFAULT_TRUSTED_KEYS)
        keys = load_trusted_keys(trusted_dir, args.public_key)
        if args.expected_digest is not None and not (
            args.expected_digest.startswith("sha256:") and len(args.expected_digest) == 71
        ):
            raise MlctlError(f"--expected-digest {args.expected_digest!r} is not sha256:<64 hex>",
                             hint="pass the InferenceService's model digest annotation", exit_code=2)
        model_dir: Path = args.model_dir
        if args.storage_uri:
            bundle, _ = download(args.storage_uri, model_dir)
            if args.signature is not None:
                bundle = args.signature.read_bytes()
        else:
            sig_path = args.signature or model_dir / SIGNATURE_FILENAME
            try:
                bundle = sig_path.read_bytes()
            except OSError:
                raise VerificationFailed(f"{sig_path} cannot be read (no signature bundle)",
                                         hint="pass --signature FILE (an exported model.sig)") from None
        result = verify_directory(model_dir, bundle, keys, expected_digest=args.expected_digest)
    except MlctlError as exc:
        detail = f"model verification failed: {exc.message}"
        if exc.hint:
            detail += f" (fix: {exc.hint})"
        _report_failure(detail, args.termination_log)
        return exc.exit_code
    print(json.dumps(result.as_dict(), sort_keys=True))
    return 0


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()


__all__ = [
    "DEFAULT_MODEL_DIR", "DEFAULT_TRUSTED_KEYS", "PodVerification", "TrustedKey", "choose_key", "download",
    "load_trusted_keys", "run", "verify_directory",
]
