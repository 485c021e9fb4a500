"""Model signing: the Signer port and the OpenSSF model-signing bundle format.

Public API (everything else in this package is internal)::

    signer = get_signer("local" | "kms" | "pkcs11", env)      # Signer: kind, key_id, public_key_pem(), sign()
    bundle = sign_model(model_dir, signer)                      # bytes: a Sigstore bundle (JSON)
    model  = verify_model(model_dir, bundle, signer.public_key_pem())   # VerifiedModel, or raises
    root, files = model_digests(model_dir)                      # same pinned hashing, no signing

``verify_model`` raises ``ModelVerificationFailed`` (a ``control_plane.errors.VerificationFailed``)
whose message names the first offending file and whose ``problems`` list names every one.
"""

from __future__ import annotations

from control_plane.signing.bundle import (
    VerifiedModel,
    sign_digests,
    sign_model,
    sign_model_with_digests,
    verify_model,
)
from control_plane.signing.digests import (
    PINNED,
    SIGNATURE_FILENAME,
    HashingConfig,
    ModelVerificationFailed,
    Problem,
    model_digests,
)
from control_plane.signing.keys import key_fingerprint, verify_signature
from control_plane.signing.signers import SIGNER_KINDS, KmsSigner, LocalSigner, Signer, get_signer

PINNED_HASHING = PINNED

__all__ = [
    "PINNED_HASHING",
    "SIGNATURE_FILENAME",
    "SIGNER_KINDS",
    "HashingConfig",
    "KmsSigner",
    "LocalSigner",
    "ModelVerificationFailed",
    "Problem",
    "Signer",
    "VerifiedModel",
    "get_signer",
    "key_fingerprint",
    "model_digests",
    "sign_digests",
    "sign_model",
    "sign_model_with_digests",
    "verify_model",
    "verify_signature",
]
