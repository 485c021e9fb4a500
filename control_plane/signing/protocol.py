"""What a signer is (a leaf: the local, KMS and PKCS#11 signers all implement it, and none imports
another), and the check every signer's output passes before anyone stores it."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from control_plane.errors import VerificationFailed
from control_plane.signing.keys import verify_signature

__all__ = ["Signer", "checked"]


@runtime_checkable
class Signer(Protocol):
    """Signs bytes with ECDSA P-256 over SHA-256 (DER signature); the private key stays with it."""

    kind: str  # "local-dev" | "aws-kms" | "pkcs11"
    key_id: str  # sha256:<hex> of the SubjectPublicKeyInfo DER

    def public_key_pem(self) -> bytes: ...

    def sign(self, data: bytes) -> bytes: ...


def checked(signer: Signer, data: bytes, signature: bytes) -> bytes:
    """Verify our own signature before anyone stores it: a signer that returns a signature its
    public key does not accept (wrong key, wrong hashing on the remote side) fails here, loudly."""
    if not verify_signature(signer.public_key_pem(), data, signature):
        raise VerificationFailed(
            f"the {signer.kind} signer returned a signature that its own public key ({signer.key_id}) "
            "does not verify",
            hint="check that the key is ECC_NIST_P256 / SIGN_VERIFY and that the signer is not misconfigured",
        )
    return signature
