"""Signatures that can leave the registry: export a version for another verifier, and verify a
directory against a bundle file (what an auditor holds), with no registry row needed.

``export`` writes the exact registered bytes, the version's OpenSSF bundle as ``DIR/model.sig`` and
the signer's public key (PEM) beside the directory, after verifying the copy on its way out; the
result verifies with the upstream tool as it is::

    model_signing verify key --signature DIR/model.sig --public_key DIR.pub.pem DIR

(add ``--no-ignore-git-paths`` when the model holds git files such as ``.gitattributes``: we sign them)

(the key is kept outside DIR because any file inside it that the signature does not list is, by
design, refused as an extra file).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from control_plane import audit
from control_plane.errors import Conflict, MlctlError, VerificationFailed
from control_plane.registry import lineage as lin
from control_plane.registry.service import get_version, materialize
from control_plane.registry.signing import signature_material, verify
from control_plane.signing import SIGNATURE_FILENAME, key_fingerprint, verify_model


@dataclass(frozen=True)
class ExportResult:
    ref: str
    root_digest: str
    directory: str
    signature: str
    public_key: str
    key_id: str
    files: int

    def upstream_command(self) -> str:
        # --no-ignore-git-paths: the pinned configuration signs git files too (.gitattributes in a
        # Hugging Face model, say), which the upstream CLI would otherwise skip and report missing.
        return (f"model_signing verify key --signature {self.signature} --public_key {self.public_key} "
                f"--no-ignore-git-paths {self.directory}")

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "upstream_command": self.upstream_command()}


def default_key_path(directory: Path) -> Path:
    return directory.parent / f"{directory.name}.pub.pem"



def check_target(target: Path, key_path: Path) -> None:
    """Where an export may go (here and in the CLI's download from a server): a new or empty
    directory, a key file that does not exist yet and lies outside it."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise Conflict(f"{target} exists and is not an empty directory",
                       hint="export into a new directory (nothing is overwritten)")
    if key_path.exists():
        raise Conflict(f"{key_path} exists", hint="remove it, or pass --public-key-out FILE")
    if key_path.resolve().is_relative_to(target.resolve()):
        raise MlctlError(f"--public-key-out {key_path} is inside {target}",
                         hint="keep the key outside the model directory: a file the signature does not "
                         "list is refused by every verifier", exit_code=2)

def write_public_key(key_path: Path, pem: bytes) -> None:
    """The verifying key beside an export: a new file (never overwritten), public (0644)."""
    key_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)


def export(name: str, version: str, dest: str | Path, *, public_key_out: str | Path | None = None) -> ExportResult:
    """Write NAME:V into ``dest`` (which must not exist, or be empty) with ``model.sig``, and the
    signer's public key to ``public_key_out`` (default ``<dest>.pub.pem``). The copy is verified
    against the registered signature before anything appears at ``dest``; on any failure nothing
    is left behind. Audited; authorized (``model.export``) by ``control_plane.services.models.export``."""
    lin.check_name(name)
    lin.check_version(version)
    ref = f"{name}:{version}"
    mv = get_version(name, version)
    bundle, pem = signature_material(name, version)  # VerificationFailed when unsigned
    target = Path(dest)
    key_path = Path(public_key_out) if public_key_out is not None else default_key_path(target)
    check_target(target, key_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Staged beside the target (same file system, private 0700) and renamed into place once verified.
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.export-", dir=target.parent))
    try:
        copy = materialize(name, version, staging / "model")  # each file's registered sha256 checked
        result = verify(name, version, path=copy)  # signature, root digest and provenance (audited)
        (copy / SIGNATURE_FILENAME).write_bytes(bundle)
        if target.exists():
            target.rmdir()  # empty (checked above)
        os.replace(copy, target)
        os.chmod(target, 0o700)  # model bytes may be confidential: private until the user shares them
    except VerificationFailed as exc:
        audit.record(action="model.export", subject=ref, decision="deny", reasons=[exc.message],
                     digests={"root": mv.root_digest})
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    write_public_key(key_path, pem)
    out = ExportResult(ref=mv.ref, root_digest=mv.root_digest, directory=str(target),
                       signature=str(target / SIGNATURE_FILENAME), public_key=str(key_path),
                       key_id=result.key_id, files=result.files)
    audit.record(action="model.export", subject=ref, digests={"root": mv.root_digest, "key": result.key_id},
                 details={"files": result.files, "directory": str(target.resolve())})
    return out


@dataclass(frozen=True)
class BundleVerifyResult:
    ref: str | None
    root_digest: str
    key_id: str
    files: int
    directory: str
    bundle: str
    key_source: str  # "file" | "registry"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def verify_bundle(
    bundle_file: str | Path,
    *,
    path: str | Path | None = None,
    public_key_pem: bytes | None = None,
    ref: str | None = None,
) -> BundleVerifyResult:
    """Verify a model directory against a bundle *file* (e.g. an exported ``model.sig``) and a public
    key, with the pinned hashing configuration. ``path`` defaults to the bundle's directory (the
    export layout). With ``ref`` the key defaults to the one the registry recorded for it, and the
    bundle must vouch for exactly the registered root digest. Audited."""
    bundle_path = Path(bundle_file)
    try:
        bundle = bundle_path.read_bytes()
    except OSError as exc:
        raise MlctlError(f"--bundle {bundle_path}: cannot read it ({exc.strerror})",
                         hint="pass the model.sig file (mlctl model export writes one)", exit_code=2) from None
    model_dir = Path(path) if path is not None else bundle_path.parent
    mv = None
    key_source = "file"
    if ref is not None:
        mv = get_version(*lin.parse_ref(ref))
        if public_key_pem is None:
            public_key_pem = signature_material(mv.name, mv.version)[1]
            key_source = "registry"
    if public_key_pem is None:
        raise MlctlError("verifying a bundle needs the signer's public key",
                         hint="pass --public-key FILE (the .pub.pem that mlctl model export wrote), or NAME:V",
                         exit_code=2)
    key_id = key_fingerprint(public_key_pem)
    subject = mv.ref if mv is not None else f"bundle:{bundle_path.name}"
    try:
        verified = verify_model(model_dir, bundle, public_key_pem)
        root = f"sha256:{verified.root_digest}"
        if mv is not None and root != mv.root_digest:
            raise VerificationFailed(
                f"the bundle vouches for another model (root {root[:23]}…), not {mv.ref} ({mv.root_digest[:23]}…)",
                hint=f"verify with {mv.ref}'s own model.sig (mlctl model export {mv.ref} DIR)",
            )
    except VerificationFailed as exc:
        audit.record(action="model.verify", subject=subject, decision="deny", reasons=[exc.message],
                     digests={"key": key_id}, details={"source": "bundle"})
        raise
    audit.record(action="model.verify", subject=subject, digests={"root": root, "key": key_id},
                 details={"source": "bundle", "files": len(verified.files)})
    return BundleVerifyResult(ref=mv.ref if mv else None, root_digest=root, key_id=key_id,
                              files=len(verified.files), directory=str(model_dir), bundle=str(bundle_path),
                              key_source=key_source)
