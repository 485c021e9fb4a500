"""Key helpers shared by every signer: fingerprints and plain ECDSA P-256 verification."""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from control_plane.errors import VerificationFailed


def load_p256_public_key(public_key_pem: bytes) -> ec.EllipticCurvePublicKey:
    """Parse a SubjectPublicKeyInfo PEM and insist on P-256 (the only curve our signers use)."""
    try:
        key = serialization.load_pem_public_key(public_key_pem)
    except (ValueError, TypeError) as exc:
        raise VerificationFailed(
            f"the public key is not a valid PEM SubjectPublicKeyInfo: {exc}",
            hint="pass the signer's public key as PEM (-----BEGIN PUBLIC KEY-----)",
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise VerificationFailed(
            "the public key is not an ECDSA P-256 key",
            hint="model signatures are ECDSA P-256 over SHA-256; use the signer's P-256 public key",
        )
    return key


def spki_der(public_key: ec.EllipticCurvePublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def spki_pem(public_key: ec.EllipticCurvePublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_fingerprint(public_key_pem: bytes) -> str:
    """``sha256:<hex>`` of the SubjectPublicKeyInfo DER: stable across PEM line wrapping."""
    return "sha256:" + hashlib.sha256(spki_der(load_p256_public_key(public_key_pem))).hexdigest()


def upstream_key_hint(public_key_pem: bytes) -> str:
    """The key hint model-signing 1.1.1 writes into a bundle: sha256 over the key's canonical PEM."""
    return hashlib.sha256(spki_pem(load_p256_public_key(public_key_pem))).hexdigest()


def verify_signature(public_key_pem: bytes, data: bytes, signature: bytes) -> bool:
    """True when ``signature`` (DER ECDSA) is a P-256/SHA-256 signature of ``data`` by that key."""
    key = load_p256_public_key(public_key_pem)
    try:
        key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True
