"""Signers: the development key, AWS KMS on the emulator, and interop with the upstream verifier."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

from blueprints.loader import load_environment
from blueprints.schema import Environment
from control_plane.emulator.aws import client_kwargs
from control_plane.errors import MlctlError, NotFound, VerificationFailed
from control_plane.settings import DEFAULT_BLUEPRINT
from control_plane.signing import (
    PINNED_HASHING,
    KmsSigner,
    LocalSigner,
    get_signer,
    key_fingerprint,
    sign_model,
    sign_model_with_digests,
    verify_model,
    verify_signature,
)
from control_plane.signing.signers import KMS_RAW_LIMIT


def upstream_verify(model_dir: Path, bundle: bytes, public_key_pem: bytes, tmp_path: Path) -> None:
    """Verify with model-signing's own API (no code of ours on the verifying side)."""
    from model_signing import verifying

    sig, pub = tmp_path / "upstream.sig", tmp_path / "upstream.pub"
    sig.write_bytes(bundle)
    pub.write_bytes(public_key_pem)
    verifying.Config().use_elliptic_key_verifier(public_key=pub).set_hashing_config(
        PINNED_HASHING.upstream()
    ).verify(model_dir, sig)


# --- local development key --------------------------------------------------------------------


def test_local_key_created_once_private_and_warned(
    mlctl_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = get_signer("local")
    assert "DEVELOPMENT signing key" in capsys.readouterr().err
    key_file = mlctl_home / "keys" / "signing-dev.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    second = get_signer("local")
    assert "DEVELOPMENT" not in capsys.readouterr().err
    assert first.key_id == second.key_id == key_fingerprint(first.public_key_pem())
    assert first.kind == "local-dev"
    sig = first.sign(b"payload")
    assert verify_signature(second.public_key_pem(), b"payload", sig)
    assert not verify_signature(second.public_key_pem(), b"payload!", sig)


def test_local_key_readable_by_others_is_refused(mlctl_home: Path) -> None:
    get_signer("local")
    (mlctl_home / "keys" / "signing-dev.pem").chmod(0o644)
    with pytest.raises(MlctlError, match="readable by others") as err:
        get_signer("local")
    assert "chmod 600" in (err.value.hint or "")


def test_unknown_signer_kind() -> None:
    with pytest.raises(MlctlError, match="unknown signer 'vault'"):
        get_signer("vault")


def test_local_bundle_verifies_with_upstream_api_and_cli(
    model_dir: Path, signer: LocalSigner, tmp_path: Path
) -> None:
    bundle = sign_model(model_dir, signer)
    upstream_verify(model_dir, bundle, signer.public_key_pem(), tmp_path)
    (tmp_path / "m.sig").write_bytes(bundle)
    (tmp_path / "m.pub").write_bytes(signer.public_key_pem())
    cli = Path(sys.executable).parent / "model_signing"
    ok = subprocess.run(
        [
            str(cli),
            "verify",
            "key",
            "--signature",
            str(tmp_path / "m.sig"),
            "--public_key",
            str(tmp_path / "m.pub"),
            "--no-ignore-git-paths",
            str(model_dir),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    (model_dir / "weights.bin").write_bytes(b"tampered")
    bad = subprocess.run(
        [
            str(cli),
            "verify",
            "key",
            "--signature",
            str(tmp_path / "m.sig"),
            "--public_key",
            str(tmp_path / "m.pub"),
            "--no-ignore-git-paths",
            str(model_dir),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode != 0 and "weights.bin" in bad.stdout + bad.stderr


def test_upstream_signed_bundle_verifies_with_ours(
    model_dir: Path, signer: LocalSigner, tmp_path: Path
) -> None:
    """The other direction: model-signing's own key signer, with our pinned config, is accepted."""
    from model_signing import signing

    sig = tmp_path / "upstream-signed.sig"
    signing.Config().use_elliptic_key_signer(private_key=signer.path).set_hashing_config(
        PINNED_HASHING.upstream()
    ).sign(model_dir, sig)
    verified = verify_model(model_dir, sig.read_bytes(), signer.public_key_pem())
    assert len(verified.files) == 4


# --- AWS KMS on the emulator ------------------------------------------------------------------


@pytest.fixture()
def local_env() -> Environment:
    return load_environment(DEFAULT_BLUEPRINT)


@pytest.fixture()
def kms_key(aws_emulator: str, local_env: Environment) -> dict[str, Any]:
    """The blueprint's signing key as `mlctl infra apply` creates it: ECC_NIST_P256 / SIGN_VERIFY."""
    kms = boto3.client("kms", **client_kwargs(local_env))
    key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY", Description="model signing")[
        "KeyMetadata"
    ]
    alias = f"alias/{local_env.name}-signing"
    aliases = {a["AliasName"] for a in kms.list_aliases()["Aliases"]}
    if alias in aliases:  # the emulator lives for the whole session
        kms.update_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    else:
        kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    return {"client": kms, "key_id": key["KeyId"], "alias": alias}


def test_kms_signer_bundle_verifies_with_ours_and_upstream(
    kms_key: dict[str, Any], local_env: Environment, model_dir: Path, tmp_path: Path
) -> None:
    signer = get_signer("kms", local_env)
    assert signer.kind == "aws-kms"
    der = kms_key["client"].get_public_key(KeyId=kms_key["key_id"])["PublicKey"]
    import hashlib

    assert signer.key_id == "sha256:" + hashlib.sha256(der).hexdigest()
    bundle, signed = sign_model_with_digests(model_dir, signer)
    verified = verify_model(model_dir, bundle, signer.public_key_pem())
    assert verified.root_digest == signed.root_digest and verified.key_id == signer.key_id
    upstream_verify(model_dir, bundle, signer.public_key_pem(), tmp_path)
    (model_dir / "config.json").write_text("{}")
    with pytest.raises(VerificationFailed, match=r"'config\.json' was changed"):
        verify_model(model_dir, bundle, signer.public_key_pem())


def test_kms_large_manifest_over_raw_limit(
    kms_key: dict[str, Any], local_env: Environment, tmp_path: Path
) -> None:
    """A model of many files makes a DSSE payload over KMS's 4096-byte RAW limit; on the emulator it is
    still sent RAW (moto has no limit, and its DIGEST mode is wrong) and the bundle verifies."""
    many = tmp_path / "many-files"
    many.mkdir()
    for i in range(60):
        (many / f"shard-{i:03d}.bin").write_bytes(i.to_bytes(4, "big") * 100)
    signer = get_signer("kms", local_env)
    bundle = sign_model(many, signer)
    import base64
    import json

    assert len(base64.b64decode(json.loads(bundle)["dsseEnvelope"]["payload"])) > KMS_RAW_LIMIT
    verify_model(many, bundle, signer.public_key_pem())
    upstream_verify(many, bundle, signer.public_key_pem(), tmp_path)


def test_kms_signer_self_check_catches_a_wrong_signature(
    kms_key: dict[str, Any], local_env: Environment
) -> None:
    """Treat the emulator like real AWS: a message over 4096 bytes goes as DIGEST, which moto hashes again
    (its bug). The signature is wrong, and the signer refuses to return it rather than emit a bad bundle."""
    signer = KmsSigner(local_env)
    signer._emulated = False
    assert verify_signature(signer.public_key_pem(), b"x", signer.sign(b"x"))  # RAW: right
    with pytest.raises(VerificationFailed, match="does not verify"):
        signer.sign(b"y" * (KMS_RAW_LIMIT + 1))


def test_kms_missing_key(aws_emulator: str, local_env: Environment) -> None:
    with pytest.raises(NotFound, match="alias/nobody-signing does not exist") as err:
        KmsSigner(local_env, key="alias/nobody-signing")
    assert "infra apply" in (err.value.hint or "")


def test_kms_symmetric_key_is_refused(aws_emulator: str, local_env: Environment) -> None:
    kms = boto3.client("kms", **client_kwargs(local_env))
    key = kms.create_key(KeySpec="SYMMETRIC_DEFAULT", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["KeyId"]
    with pytest.raises(MlctlError, match="not ECC_NIST_P256/SIGN_VERIFY"):
        KmsSigner(local_env, key=key)


def test_local_key_first_use_race(mlctl_home: Path) -> None:
    """Several processes using the signer for the first time at once end up with one key."""
    code = "from control_plane.signing import get_signer; print(get_signer('local').key_id)"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert len({out.strip() for out, _ in outs}) == 1
    assert sum("DEVELOPMENT" in err for _, err in outs) == 1
    assert [p.name for p in (mlctl_home / "keys").iterdir()] == ["signing-dev.pem"]
