"""The Signer port: who holds the private key. Every signer makes ECDSA P-256 / SHA-256 DER signatures.

- ``LocalSigner``: a development key under ``$MLCTL_HOME/keys`` (created on first use, mode 0600).
- ``KmsSigner``: the environment's AWS KMS signing key (``alias/<env>-signing``); the key never
  leaves KMS. Works against the local emulator through ``client_kwargs``.
- ``Pkcs11Signer`` (``control_plane.signing.pkcs11``): a key on an HSM or token.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from control_plane.errors import InfraError, MlctlError, NotFound
from control_plane.output import info
from control_plane.settings import state_dir
from control_plane.signing.keys import key_fingerprint, load_p256_public_key, spki_pem
from control_plane.signing.pkcs11 import Pkcs11Signer
from control_plane.signing.protocol import Signer, checked

if TYPE_CHECKING:
    from blueprints.schema import Environment

SIGNER_KINDS = ("local", "kms", "pkcs11")
DEV_KEY_FILE = "signing-dev.pem"
# AWS KMS Sign accepts at most 4096 bytes with MessageType=RAW; larger messages go as a digest.
KMS_RAW_LIMIT = 4096


_checked = checked  # the name the KMS signer and tests use


class LocalSigner:
    """A P-256 key in a file. For development and tests only: the key is on the operator's disk."""

    kind = "local-dev"

    def __init__(self, key_path: Path | None = None) -> None:
        self.path = key_path or state_dir("keys") / DEV_KEY_FILE
        self._key = self._load_or_create(self.path)
        self._pem = spki_pem(self._key.public_key())
        self.key_id = key_fingerprint(self._pem)

    @staticmethod
    def _load_or_create(path: Path) -> ec.EllipticCurvePrivateKey:
        if not path.exists():
            key = ec.generate_private_key(ec.SECP256R1())
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # Write a complete private file, then link it into place: link() is atomic and fails if the
            # name exists, so two first uses at once agree on one key and nobody reads a half-written file.
            fd, tmp = tempfile.mkstemp(prefix=".signing-", dir=path.parent)  # mode 0600
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(pem)
                os.link(tmp, path)
            except FileExistsError:
                pass
            else:
                info(
                    f"[yellow]warning:[/] created a DEVELOPMENT signing key at {path}; "
                    "it is not for production (use --signer kms or pkcs11 there)"
                )
            finally:
                os.unlink(tmp)
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise MlctlError(
                f"the development signing key {path} is readable by others (mode {mode:o})",
                hint=f"chmod 600 {path}",
            )
        try:
            loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise MlctlError(
                f"{path} is not a PEM private key: {exc}",
                hint=f"move it aside; mlctl creates a fresh development key at {path} on next use",
            ) from None
        if not isinstance(loaded, ec.EllipticCurvePrivateKey) or loaded.curve.name != "secp256r1":
            raise MlctlError(f"{path} is not an ECDSA P-256 key", hint="use a P-256 (prime256v1) key")
        return loaded

    def public_key_pem(self) -> bytes:
        return self._pem

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data, ec.ECDSA(hashes.SHA256()))


class KmsSigner:
    """The environment's asymmetric KMS key (ECC_NIST_P256, SIGN_VERIFY) signs; the key never leaves KMS."""

    kind = "aws-kms"

    def __init__(self, env: Environment, *, key: str | None = None, client: Any = None) -> None:
        if str(env.cloud) != "aws":
            raise MlctlError(
                f"environment '{env.name}' is on {env.cloud}; the kms signer uses AWS KMS",
                hint="use --signer pkcs11 (Azure Managed HSM exposes PKCS#11), "
                "or --signer local for development",
            )
        self.env = env
        self.key_ref = key or f"alias/{env.name}-signing"
        self._emulated = env.is_local
        if client is None:
            import boto3

            # verify_pod imports this module in the pod: cryptography and boto3 only, no blueprints
            from control_plane.emulator.aws import client_kwargs  # lazy: pulls blueprints (pydantic)

            client = boto3.client("kms", **client_kwargs(env))
        self._kms = client
        self._pem = self._fetch_public_key()
        self.key_id = key_fingerprint(self._pem)

    def _call(self, op: str, **kwargs: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            result: dict[str, Any] = getattr(self._kms, op)(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "NotFoundException":
                raise NotFound(
                    f"KMS key {self.key_ref} does not exist in {self.env.region}",
                    hint=f"apply the blueprint (mlctl infra apply --blueprint ...) so that {self.key_ref} "
                    "exists",
                ) from None
            raise InfraError(
                f"KMS {op} on {self.key_ref} failed: {code or exc}",
                hint="check credentials and that this identity may use the signing key (kms:Sign, "
                "kms:GetPublicKey)",
            ) from None
        except BotoCoreError as exc:
            raise InfraError(
                f"KMS {op} on {self.key_ref} failed: {exc}",
                hint="check AWS credentials and network access to KMS (or `mlctl local up` for the emulator)",
            ) from None
        return result

    def _fetch_public_key(self) -> bytes:
        resp = self._call("get_public_key", KeyId=self.key_ref)
        spec = resp.get("KeySpec") or resp.get("CustomerMasterKeySpec")
        if spec != "ECC_NIST_P256" or resp.get("KeyUsage") != "SIGN_VERIFY":
            raise MlctlError(
                f"KMS key {self.key_ref} is {spec}/{resp.get('KeyUsage')}, not ECC_NIST_P256/SIGN_VERIFY",
                hint="the blueprint's signing key must be an asymmetric ECC_NIST_P256 key for SIGN_VERIFY",
            )
        public_key = serialization.load_der_public_key(resp["PublicKey"])
        assert isinstance(public_key, ec.EllipticCurvePublicKey)
        return spki_pem(public_key)

    def public_key_pem(self) -> bytes:
        return self._pem

    def sign(self, data: bytes) -> bytes:
        # RAW lets KMS hash the message itself. We prefer it whenever KMS allows (<= 4096 bytes; a DSSE
        # envelope of a model manifest usually is) because moto's DIGEST mode hashes the digest again
        # (a moto bug; real AWS is right). On real AWS, larger messages are sent as their SHA-256 with
        # DIGEST; the emulator has no size limit, so it always gets RAW.
        if len(data) <= KMS_RAW_LIMIT or self._emulated:
            kwargs: dict[str, Any] = {"Message": data, "MessageType": "RAW"}
        else:
            kwargs = {"Message": hashlib.sha256(data).digest(), "MessageType": "DIGEST"}
        resp = self._call("sign", KeyId=self.key_ref, SigningAlgorithm="ECDSA_SHA_256", **kwargs)
        return _checked(self, data, bytes(resp["Signature"]))


def _default_environment() -> Environment:
    # verify_pod imports this module in the pod: cryptography and boto3 only, no blueprints
    from control_plane.environments import default_environment  # lazy: pulls blueprints (pydantic)

    return default_environment()


def get_signer(kind: str = "local", env: Environment | None = None) -> Signer:
    """The signer named by ``kind``: ``local`` (development key), ``kms`` (the environment's KMS
    signing key; the default blueprint when ``env`` is None) or ``pkcs11`` (MLCTL_PKCS11_* settings)."""
    if kind == "local":
        return LocalSigner()
    if kind == "kms":
        return KmsSigner(env or _default_environment())
    if kind == "pkcs11":
        return Pkcs11Signer.from_environment()
    raise MlctlError(f"unknown signer '{kind}'", hint=f"use one of: {', '.join(SIGNER_KINDS)}")


__all__ = [
    "KMS_RAW_LIMIT",
    "SIGNER_KINDS",
    "KmsSigner",
    "LocalSigner",
    "Signer",
    "get_signer",
    "load_p256_public_key",
]
