"""The model-file tamper matrix through `mlctl model verify`: each case refused (exit 8) with a
reason naming the file; an untouched copy verifies. (The signing library has its own tests.)"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from control_plane import registry
from tests.registry.conftest import make_model, run_cli

REF = "fraud:1"


@pytest.fixture()
def signed(roles: Path, act_as: Callable[[str], None], model_dir: Path, tmp_path: Path) -> Path:
    """fraud:1 registered and signed with the local key; returns an untouched local copy."""
    act_as("eli")
    registry.register("fraud", "1", model_dir, code_commit="abcdef1")
    registry.sign("fraud", "1")
    return Path(shutil.copytree(model_dir, tmp_path / "copy"))


def _changed(d: Path) -> str:
    p = d / "weights" / "part-1.bin"
    data = bytearray(p.read_bytes())
    data[10] ^= 1
    p.write_bytes(bytes(data))
    return "weights/part-1.bin"


def _truncated(d: Path) -> str:
    p = d / "weights" / "part-0.bin"
    p.write_bytes(p.read_bytes()[:-1])
    return "weights/part-0.bin"


def _extra(d: Path) -> str:
    (d / "weights" / "backdoor.py").write_text("import os\n")
    return "weights/backdoor.py"


def _missing(d: Path) -> str:
    (d / "config.json").unlink()
    return "config.json"


def _renamed(d: Path) -> str:
    (d / "weights" / "part-2.bin").rename(d / "weights" / "part-9.bin")
    return "part-9.bin"


def _symlink(d: Path) -> str:
    target = d.parent / "outside.bin"
    shutil.copyfile(d / "weights" / "part-0.bin", target)
    (d / "weights" / "part-0.bin").unlink()
    os.symlink(target, d / "weights" / "part-0.bin")
    return "weights/part-0.bin"


TAMPER: dict[str, Callable[[Path], str]] = {
    "changed-byte": _changed, "truncated": _truncated, "extra-file": _extra, "missing-file": _missing,
    "renamed-file": _renamed, "symlink": _symlink,
}


def test_untouched_copy_and_store_copy_verify(signed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli("model", "verify", REF, "--path", str(signed), "-o", "json")
    assert code == 0, err
    body = json.loads(out)
    assert body["verified"] and body["provenance"] == "verified" and body["files"] == 4
    code, out, err = run_cli("model", "verify", REF)
    assert code == 0 and "verified fraud:1" in " ".join(out.split()), err


@pytest.mark.parametrize("case", sorted(TAMPER))
def test_tampered_copy_is_refused_naming_the_file(signed: Path, capsys: pytest.CaptureFixture[str],
                                                 case: str) -> None:
    named = TAMPER[case](signed)
    code, out, err = run_cli("model", "verify", REF, "--path", str(signed))
    assert code == 8, (out, err)
    assert named in err and "fix:" in err and "Traceback" not in err


def test_tampered_store_copy_is_refused(signed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stored = Path(registry.get_version("fraud", "1").artifact_uri[len("file://"):]) / "config.json"
    stored.chmod(0o644)
    stored.write_text('{"arch": "evil"}')
    code, _, err = run_cli("model", "verify", REF)
    assert code == 8 and "config.json" in err


def test_signature_by_another_key_is_refused(signed: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from control_plane.signing import LocalSigner

    other = LocalSigner(tmp_path / "other-key.pem")
    pem = tmp_path / "other.pub.pem"
    pem.write_bytes(other.public_key_pem())
    code, _, err = run_cli("model", "verify", REF, "--path", str(signed), "--key", str(pem))
    assert code == 8 and "signed by another key" in err and other.key_id in err, err


def test_signature_of_another_model_is_refused(signed: Path, act_as: Callable[[str], None], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from control_plane.store import get_engine

    registry.register("other", "1", make_model(tmp_path / "other", seed="z"), code_commit="abcdef1")
    registry.sign("other", "1")
    # Someone with database access swaps other:1's (validly signed) bundle into fraud:1's record.
    with get_engine().begin() as conn:
        sig = conn.execute(sa.text("SELECT signature FROM model_versions WHERE name = 'other'")).scalar_one()
        conn.execute(sa.text("UPDATE model_versions SET signature = :s WHERE name = 'fraud'"), {"s": sig})
    code, _, err = run_cli("model", "verify", REF, "--path", str(signed))
    assert code == 8 and "another model" in err, err


def test_unsigned_version_is_refused_with_the_fix(roles: Path, act_as: Callable[[str], None], model_dir: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    act_as("eli")
    registry.register("fraud", "1", model_dir, code_commit="abcdef1")
    code, _, err = run_cli("model", "verify", REF, "--path", str(model_dir))
    assert code == 8 and "fraud:1 is not signed" in err and "mlctl model sign fraud:1" in err


def test_cli_sign_requires_a_role_and_is_audited(roles: Path, act_as: Callable[[str], None], model_dir: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from control_plane import audit

    act_as("dana")
    registry.register("fraud", "1", model_dir, code_commit="abcdef1")
    code, _, err = run_cli("--as", "dana", "model", "sign", REF)
    assert code == 4 and "lacks permission 'model.sign'" in err
    code, out, err = run_cli("--as", "eli", "model", "sign", REF, "-o", "json")
    assert code == 0, err
    assert json.loads(out)["signature"]["signed"] is True
    assert [(e.action, e.decision, e.actor) for e in audit.entries()][-2:] == [
        ("model.sign", "deny", "dana"), ("model.sign", "allow", "eli")]


def test_sign_with_the_blueprint_kms_key_on_the_emulator(
    aws_emulator: str, roles: Path, act_as: Callable[[str], None], model_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import boto3

    kms = boto3.client("kms", region_name="me-central-1", endpoint_url=aws_emulator)
    alias = "alias/uae-local-signing"  # what the infra stacks create for blueprints/uae-local.yaml
    if not any(a["AliasName"] == alias for a in kms.list_aliases()["Aliases"]):
        key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName=alias, TargetKeyId=key)
    act_as("eli")
    registry.register("fraud", "1", model_dir, code_commit="abcdef1")
    code, out, err = run_cli("--as", "eli", "model", "sign", REF, "--signer", "kms", "-o", "json")
    assert code == 0, err
    sig = json.loads(out)["signature"]
    assert sig["signer_kind"] == "aws-kms" and sig["provenance_signed"]
    code, out, err = run_cli("model", "verify", REF, "--path", str(model_dir), "-o", "json")
    assert code == 0, err
    assert json.loads(out)["key_id"] == sig["key_id"]
