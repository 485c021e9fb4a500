"""Sign a registered version (model bundle + provenance envelope) and verify bytes against it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from control_plane import audit, identity, provenance
from control_plane.errors import Conflict, MlctlError, VerificationFailed
from control_plane.output import info
from control_plane.registry import lineage as lin
from control_plane.registry.models import ModelVersionRow
from control_plane.registry.service import artifact_location, get_version, materialized, now
from control_plane.registry.view import ModelVersion
from control_plane.signing import SIGNATURE_FILENAME, get_signer, key_fingerprint, sign_digests, verify_model
from control_plane.store import session_scope

if TYPE_CHECKING:
    from blueprints.schema import Environment


@dataclass(frozen=True)
class VerifyResult:
    ref: str
    root_digest: str
    key_id: str
    signer_kind: str | None
    files: int
    source: str  # "artifact store <uri>" or the local path checked
    provenance: str  # "verified" | "absent"
    key_source: str  # "registry" | "pinned"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def sign(name: str, version: str, *, signer_kind: str = "local", env: Environment | None = None) -> ModelVersion:
    """Sign the registered digests of NAME:V (OpenSSF model-signing bundle) and its provenance
    statement (DSSE), store both with the public key, and audit it. Signing again with the same
    key is a no-op; a version already signed by another key is refused (signatures are immutable).
    Not authorized here: ``control_plane.services.models.sign`` checks ``model.sign``."""
    lin.check_name(name)
    lin.check_version(version)
    ref = f"{name}:{version}"
    mv = get_version(name, version)
    signer = get_signer(signer_kind, env)
    if mv.signature.signed:
        if mv.signature.key_id == signer.key_id:
            publish_signature(mv)  # (again: a version signed before an upload failed, or before model.sig)
            return mv
        raise Conflict(
            f"{ref} is already signed by key {mv.signature.key_id} ({mv.signature.signer_kind})",
            hint="a version's signature is immutable; register the model as a new version to sign it with another key",
        )
    bundle = sign_digests(name, mv.files, signer)
    envelope = provenance.sign_statement(mv.provenance, signer)
    # Never store a signature we cannot verify ourselves.
    provenance.verify_envelope(envelope, signer.public_key_pem(), mv.root_hex)
    who = _acting().name
    with session_scope() as s:
        # Conditional update: of two concurrent signers exactly one sets the signature (on SQLite too,
        # where SELECT ... FOR UPDATE does not exist).
        done = s.execute(
            update(ModelVersionRow)
            .where(ModelVersionRow.name == name, ModelVersionRow.version == version,
                   ModelVersionRow.signature.is_(None))
            .values(signature=bundle, signer_kind=signer.kind, key_id=signer.key_id,
                    public_key_pem=signer.public_key_pem().decode(), signed_by=who, signed_at=now(),
                    provenance_envelope=json.dumps(envelope, sort_keys=True))
            .execution_options(synchronize_session=False)
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict(f"{ref} was signed concurrently by someone else", hint=f"run mlctl model show {ref}")
        audit.record(action="model.sign", subject=ref, digests={"root": mv.root_digest, "key": signer.key_id},
                     details={"signer": signer.kind}, session=s)
    signed = get_version(name, version)
    try:
        publish_signature(signed)
    except MlctlError as exc:
        # The signature is recorded (the reference); a pod refuses the model until model.sig is
        # beside it, so say so instead of failing a signing that has happened.
        info(f"[yellow]warning:[/] {ref} is signed, but model.sig could not be published beside it "
             f"({exc.message}); run `mlctl model sign {ref}` again to publish it: pods on Kubernetes "
             "refuse the model until then")
    return signed


def publish_signature(mv: ModelVersion) -> str:
    """Put the version's bundle beside its bytes in the artifact store (``<prefix>/model.sig``), where
    the in-pod verifier (``control_plane.signing.verify_pod``) reads it. The registry row stays the
    reference: the verifier also pins the root digest the release names, so a bundle swapped in the
    bucket gains nothing. Idempotent; returns the signature's URI."""
    bundle, _ = signature_material(mv.name, mv.version)
    store, prefix = artifact_location(mv)
    return store.put_blob(f"{prefix}/{SIGNATURE_FILENAME}", bundle)


def signature_material(name: str, version: str) -> tuple[bytes, bytes]:
    """The registered signature bundle and signer public key (PEM) of NAME:V, for verifiers that run
    elsewhere (e.g. the TensorRT build Job's fetch step). VerificationFailed when it is unsigned."""
    bundle, pem, _ = _stored_signature(name, version)
    return bundle, pem


def _stored_signature(name: str, version: str) -> tuple[bytes, bytes, str | None]:
    with session_scope() as s:
        row = s.execute(
            select(ModelVersionRow).where(ModelVersionRow.name == name, ModelVersionRow.version == version)
        ).scalar_one()
        if row.signature is None or row.public_key_pem is None:
            raise VerificationFailed(
                f"{name}:{version} is not signed", hint=f"sign it first: mlctl model sign {name}:{version}"
            )
        return bytes(row.signature), row.public_key_pem.encode(), row.provenance_envelope


def verify(
    name: str, version: str, *, path: str | Path | None = None, public_key_pem: bytes | None = None
) -> VerifyResult:
    """Verify a local copy (``path``) or the artifact-store copy of NAME:V against its registered
    signature; also the provenance envelope. Raises VerificationFailed naming the file. Audited."""
    mv = get_version(name, version)
    signature, stored_pem, envelope = _stored_signature(name, version)
    pem = public_key_pem or stored_pem
    key_id = key_fingerprint(pem)
    try:
        if path is not None:
            source = str(Path(path))
            verified = verify_model(Path(path), signature, pem)
        else:
            source = f"artifact store {mv.artifact_uri}"
            with materialized(name, version) as copy:
                verified = verify_model(copy, signature, pem)
        if f"sha256:{verified.root_digest}" != mv.root_digest:
            raise VerificationFailed(
                f"{mv.ref}: the signed model (root sha256:{verified.root_digest[:16]}…) is not the registered one "
                f"({mv.root_digest[:23]}…)",
                hint="the registry record was altered; restore it from backup",
            )
        prov = "absent"
        if envelope:
            provenance.verify_envelope(json.loads(envelope), pem, mv.root_hex)
            prov = "verified"
    except VerificationFailed as exc:
        audit.record(action="model.verify", subject=mv.ref, decision="deny", reasons=[exc.message],
                     digests={"root": mv.root_digest, "key": key_id},
                     details={"source": "path" if path is not None else "artifact-store"})
        raise
    audit.record(action="model.verify", subject=mv.ref, digests={"root": mv.root_digest, "key": key_id},
                 details={"source": "path" if path is not None else "artifact-store"})
    return VerifyResult(
        ref=mv.ref, root_digest=mv.root_digest, key_id=key_id, signer_kind=mv.signature.signer_kind,
        files=len(verified.files), source=source, provenance=prov,
        key_source="pinned" if public_key_pem else "registry",
    )


def _acting() -> Any:
    return identity.current()
