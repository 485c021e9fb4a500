"""Sign and verify a model directory in the OpenSSF model-signing format (model_signing 1.1.1).

A signature is a Sigstore bundle (v0.3, JSON) holding a DSSE envelope whose payload is the in-toto
statement model-signing defines: subject = the model's root digest, predicate = the pinned
serialization plus one resource (path, sha256) per file. The envelope is signed by any ``Signer``
(local key, AWS KMS, PKCS#11): model-signing 1.1.1 has no KMS signer, so the bundle is assembled
here (``dsse``) the way its ``sign_ec_key.Signer`` does, with the signature coming from our port.
The result verifies with the upstream key verifier (``model_signing verify key``) given the public
key, and ``verify_model`` accepts what the upstream key signer produces with the same configuration.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from control_plane.signing import dsse
from control_plane.signing.digests import (
    PINNED,
    HashingConfig,
    ModelDigests,
    ModelVerificationFailed,
    Problem,
    compute,
    manifest_order,
    model_name_for,
    root_digest_of,
)
from control_plane.signing.keys import (
    key_fingerprint,
    load_p256_public_key,
    upstream_key_hint,
    verify_signature,
)
from control_plane.signing.signers import Signer

_RESIGN_HINT = (
    "fetch the model again from the registry; if the change is intended, register and sign a new version"
)
_BAD_BUNDLE_HINT = (
    "the signature bundle is damaged: fetch it again from the registry (mlctl model verify NAME:V)"
)


@dataclass(frozen=True)
class VerifiedModel:
    """What a good signature vouches for."""

    model_name: str  # the subject name at signing time (informative: renaming the directory is fine)
    root_digest: str  # sha256 hex, the in-toto subject digest
    files: Mapping[str, str] = field(default_factory=dict)  # relpath -> sha256 hex
    key_id: str = ""  # sha256:<hex> of the verifying key's SubjectPublicKeyInfo DER
    serialization: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "root_digest": self.root_digest,
            "files": dict(self.files),
            "key_id": self.key_id,
            "serialization": dict(self.serialization),
        }


def _sign(digests: ModelDigests, signer: Signer, config: HashingConfig) -> bytes:
    payload = dsse.statement(
        digests.model_name, digests.files, digests.root_digest, config.serialization_parameters()
    )
    signature = signer.sign(dsse.pae(payload))
    return dsse.bundle(
        payload, signature, key_hint=upstream_key_hint(signer.public_key_pem()), keyid=signer.key_id
    )


def sign_digests(
    model_name: str, files: Mapping[str, str], signer: Signer, *, config: HashingConfig = PINNED
) -> bytes:
    """A bundle for digests already computed with the pinned configuration (e.g. at upload)."""
    ordered = manifest_order(files)
    return _sign(ModelDigests(model_name, root_digest_of(ordered), ordered), signer, config)


def sign_model_with_digests(
    model_dir: Path | str, signer: Signer, *, config: HashingConfig = PINNED
) -> tuple[bytes, VerifiedModel]:
    """Hash once, sign, and return both the bundle and what it vouches for (for the registry)."""
    digests = compute(Path(model_dir), config)
    bundle = _sign(digests, signer, config)
    return bundle, VerifiedModel(
        digests.model_name,
        digests.root_digest,
        dict(digests.files),
        signer.key_id,
        config.serialization_parameters(),
    )


def sign_model(model_dir: Path | str, signer: Signer, *, config: HashingConfig = PINNED) -> bytes:
    """An OpenSSF model-signing bundle (JSON bytes) for every file under ``model_dir``."""
    return sign_model_with_digests(model_dir, signer, config=config)[0]


# --- verification ------------------------------------------------------------------------------


def _refuse(kind: str, path: str, detail: str, hint: str) -> ModelVerificationFailed:
    return ModelVerificationFailed(detail, problems=[Problem(kind, path, detail)], hint=hint)


def _verified_statement(signature: bytes | str, public_key_pem: bytes, key_id: str) -> dsse.SignedStatement:
    """The signed statement, after the checks model-signing's key verifier makes, in its order:
    bundle format, key hint, ECDSA signature over the DSSE PAE, then the statement itself."""
    raw = signature.encode("utf-8") if isinstance(signature, str) else bytes(signature)
    try:
        envelope = dsse.read_bundle(raw)
    except dsse.FormatError as exc:
        raise _refuse(
            "bad-bundle", "(signature)", f"the signature bundle cannot be read: {exc}", _BAD_BUNDLE_HINT
        ) from None
    if envelope.key_hint != upstream_key_hint(public_key_pem):
        raise _refuse(
            "wrong-key",
            "(signature)",
            f"the model was signed by another key (bundle key hint {str(envelope.key_hint)[:16]}…), "
            f"not by {key_id}",
            "verify with the key that signed this version, or re-sign the model with the expected key",
        )
    if not verify_signature(
        public_key_pem, dsse.pae(envelope.payload, envelope.payload_type), envelope.signature
    ):
        raise _refuse(
            "bad-signature",
            "(signature)",
            f"the signature does not verify with {key_id}: the signed statement was altered or another key "
            "signed it",
            _RESIGN_HINT,
        )
    try:
        return dsse.read_statement(envelope)
    except dsse.FormatError as exc:
        raise _refuse(
            "bad-bundle",
            "(signature)",
            f"the signed statement is not a model-signing v1.0 statement: {exc}",
            _RESIGN_HINT,
        ) from None


def _compare(expected: Mapping[str, str], actual: Mapping[str, str]) -> list[Problem]:
    missing = {p: d for p, d in expected.items() if p not in actual}
    extra = {p: d for p, d in actual.items() if p not in expected}
    problems: list[Problem] = []
    by_digest: dict[str, list[str]] = {}
    for path, digest in sorted(extra.items()):
        by_digest.setdefault(digest, []).append(path)
    for path, digest in sorted(missing.items()):
        candidates = by_digest.get(digest)
        inside = sorted(p for p in actual if p.startswith(path + "/"))
        if inside:
            problems.append(
                Problem(
                    "not-a-file",
                    path,
                    f"'{path}' is signed as a file but is now a directory (holding '{inside[0]}')",
                )
            )
        elif candidates:
            new = candidates.pop(0)
            del extra[new]
            problems.append(
                Problem("renamed", path, f"'{path}' was renamed to '{new}' (same bytes, other name)")
            )
        else:
            problems.append(Problem("missing", path, f"'{path}' is missing (it is signed)"))
    for path in sorted(extra):
        problems.append(Problem("extra", path, f"'{path}' is an extra file (not in the signature)"))
    for path in sorted(set(expected) & set(actual)):
        if expected[path] != actual[path]:
            problems.append(
                Problem(
                    "changed",
                    path,
                    f"'{path}' was changed: sha256 {actual[path][:16]}… does not match the signed "
                    f"{expected[path][:16]}…",
                )
            )
    return problems


def verify_model(
    model_dir: Path | str, signature: bytes | str, public_key_pem: bytes, *, config: HashingConfig = PINNED
) -> VerifiedModel:
    """Verify ``model_dir`` against a bundle and the signer's public key, or raise
    ``ModelVerificationFailed`` (a ``VerificationFailed``) whose message names the first bad file and
    whose ``problems`` list names them all."""
    load_p256_public_key(public_key_pem)
    key_id = key_fingerprint(public_key_pem)
    signed = _verified_statement(signature, public_key_pem, key_id)

    # The configuration is pinned: a bundle hashed any other way (another algorithm, a wider ignore
    # list that would hide files, symlinks allowed) is refused even if its signature is good.
    found = signed.serialization
    wanted = config.serialization_parameters()
    if found != wanted:
        changed = sorted(k for k in set(found) | set(wanted) if found.get(k) != wanted.get(k))
        raise _refuse(
            "config",
            "(signature)",
            f"the bundle's hashing configuration differs from the pinned one in {', '.join(changed)}: "
            f"signed {json.dumps({k: found.get(k) for k in changed})}, "
            f"pinned {json.dumps({k: wanted.get(k) for k in changed})}",
            "re-sign the model with mlctl (it always uses the pinned configuration)",
        )
    if signed.algorithms - {config.hash_type}:
        raise _refuse("config", "(signature)", "the bundle lists digests that are not sha256", _RESIGN_HINT)
    expected = signed.files

    actual = compute(Path(model_dir), config)  # refuses symlinks and special files, naming them
    problems = _compare(expected, actual.files)
    if problems:
        prefix = ""
        if expected and not any(expected.get(p) == d for p, d in actual.files.items()):
            prefix = f"the signature is of another model ('{signed.model_name}'): "
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        name = model_name_for(Path(model_dir))
        if not prefix and signed.model_name != name:
            more += f"; the signature names the model '{signed.model_name}'"
        raise ModelVerificationFailed(
            f"{name}: {prefix}{problems[0]}{more}", problems=problems, hint=_RESIGN_HINT
        )
    return VerifiedModel(signed.model_name, actual.root_digest, dict(actual.files), key_id, found)
