"""The signature gate trusts keys from the environment's keyring, never the key stored beside the
signature: a prod-tier release signed with the development key is refused, the same model signed
with the environment's KMS key (the AWS emulator's KMS) is released."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from control_plane.settings import BLUEPRINTS_DIR
from tests.release.helpers import FAST, mlctl, mlctl_json


def _prod_env(tmp_path: Path) -> Path:
    data = yaml.safe_load((BLUEPRINTS_DIR / "uae-local.yaml").read_text())
    data.update(name="uae-prodsim-local", tier="prod")  # emulator-backed, declared prod
    path = tmp_path / "uae-prodsim-local.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _kms_signing_key(endpoint: str, env_name: str) -> None:
    import boto3

    kms = boto3.client("kms", region_name="me-central-1", endpoint_url=endpoint)
    alias = f"alias/{env_name}-signing"
    if not any(a["AliasName"] == alias for a in kms.list_aliases()["Aliases"]):
        key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName=alias, TargetKeyId=key)


def _approve_prod(oidc: Any, ref: str, env: Path) -> None:
    for approver in ("amira", "omar"):
        oidc.login(approver)
        code, _, err = mlctl("approve", ref, "--env", str(env))
        assert code == 0, err


def test_prod_release_refuses_the_dev_key_and_accepts_the_kms_key(world, aws_emulator, oidc, tmp_path):
    from blueprints import load_environment
    from control_plane import registry

    env = _prod_env(tmp_path)
    _kms_signing_key(aws_emulator, "uae-prodsim-local")

    # digits:1 was signed with the local development key (the world fixture's default signer)
    _approve_prod(oidc, "digits:1", env)
    oidc.login("eli")
    code, view = mlctl_json("release", "digits:1", "--env", str(env), *FAST)
    assert code == 4 and view["state"] == "REFUSED"
    assert any(r.startswith("signature:") and "signed with the development key" in r
               and "prod tier" in r for r in view["reasons"]), view["reasons"]

    # The same model bytes, registered again and signed with the environment's KMS key: released.
    world.register("3", "v1", sign=False)
    registry.sign("digits", "3", signer_kind="kms", env=load_environment(env))
    _approve_prod(oidc, "digits:3", env)
    oidc.login("eli")
    code, view = mlctl_json("release", "digits:3", "--env", str(env), *FAST)
    assert code == 0 and view["state"] == "DONE", view
    from control_plane import audit

    verified = [e for e in audit.entries() if e.action == "release.transition" and e.details.get("to") == "VERIFIED"]
    assert "aws-kms" in json.dumps(verified[-1].details) and "KMS alias/uae-prodsim-local-signing" in json.dumps(
        verified[-1].details)


def test_a_swapped_key_in_the_registry_row_is_not_trusted(world, tmp_path):
    """Someone who can edit the registry rewrites digits:2's signature with their own key and
    stores their public key beside it; the gate checks against the keyring, so it is refused."""
    from sqlalchemy import update

    from control_plane import registry
    from control_plane.registry.models import ModelVersionRow
    from control_plane.signing import LocalSigner, sign_digests
    from control_plane.store import session_scope

    attacker = LocalSigner(tmp_path / "attacker.pem")
    mv = registry.get_version("digits", "2")
    bundle = sign_digests("digits", mv.files, attacker)
    with session_scope() as s:
        s.execute(update(ModelVersionRow).where(ModelVersionRow.name == "digits", ModelVersionRow.version == "2")
                  .values(signature=bundle, public_key_pem=attacker.public_key_pem().decode(),
                          key_id=attacker.key_id, provenance_envelope=None))
    assert registry.verify("digits", "2").key_source == "registry"  # the row alone "verifies"
    code, view = mlctl_json("release", "digits:2", *FAST)
    assert code == 4 and view["state"] == "REFUSED"
    assert any("which uae-local's keyring does not trust" in r and "the local development key" in r
               for r in view["reasons"]), view["reasons"]


def test_keyring_file_pins_keys_and_never_the_dev_key_for_prod(world, tmp_path, monkeypatch):
    from blueprints import load_environment
    from control_plane.signing import LocalSigner, keyring

    hsm = LocalSigner(tmp_path / "hsm-standin.pem")  # any P-256 key: what matters is that it is pinned
    dev = LocalSigner()
    ring = tmp_path / "keyring.yaml"
    ring.write_text(yaml.safe_dump({"environments": {"uae-prodsim-local": {"kms": False, "keys": [
        {"name": "hsm-1", "kind": "pkcs11", "pem": hsm.public_key_pem().decode()},
        {"name": "sneaky", "kind": "pinned", "pem": dev.public_key_pem().decode()},
    ]}}}))
    monkeypatch.setenv("MLCTL_KEYRING_FILE", str(ring))
    env = load_environment(_prod_env(tmp_path))
    assert [(k.key_id, k.kind) for k in keyring.trusted_keys(env)] == [(hsm.key_id, "pkcs11")]
    assert keyring.trusted_key_for(env, hsm.key_id, "pkcs11").source == "keyring key hsm-1"
    local = load_environment(BLUEPRINTS_DIR / "uae-local.yaml")  # no entry: dev tier trusts the dev key
    assert keyring.trusted_key_for(local, dev.key_id, "local-dev").kind == "local-dev"
