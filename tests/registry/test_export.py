"""`mlctl model export`: the exact registered bytes, model.sig and the signer's public key, verified
on the way out. The output verifies with the upstream `model_signing` CLI (run as a process), and a
flipped byte in the exported copy fails it; `mlctl model verify --bundle` checks the same files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from control_plane import registry
from control_plane.errors import Conflict, VerificationFailed
from control_plane.registry.export import export
from control_plane.signing import LocalSigner
from tests.registry.conftest import make_model, run_cli

UPSTREAM = Path(sys.executable).parent / "model_signing"


def upstream_verify(directory: Path, key: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """The command docs/signing.md gives an auditor, exactly."""
    if not UPSTREAM.exists():
        pytest.skip(f"the upstream model_signing CLI is not installed at {UPSTREAM}")
    return subprocess.run(
        [str(UPSTREAM), "verify", "key", "--signature", str(directory / "model.sig"), "--public_key", str(key),
         *flags, str(directory)],
        capture_output=True, text=True, timeout=120, check=False,
    )


@pytest.fixture()
def signed(roles: Path, act_as: Callable[[str], None], tmp_path: Path) -> registry.ModelVersion:
    act_as("eli")
    registry.register("fraud", "3", make_model(tmp_path / "src" / "fraud"), code_commit="abcdef1")
    return registry.sign("fraud", "3")


def test_export_verifies_with_the_upstream_cli_and_a_flipped_byte_fails_it(
    signed: registry.ModelVersion, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out" / "fraud-3"
    code, stdout, _ = run_cli("--as", "eli", "model", "export", "fraud:3", str(out), "-o", "json")
    assert code == 0
    result = json.loads(stdout)
    key = tmp_path / "out" / "fraud-3.pub.pem"
    assert result["public_key"] == str(key) and result["signature"] == str(out / "model.sig")
    assert result["upstream_command"] == (
        f"model_signing verify key --signature {out}/model.sig --public_key {key} --no-ignore-git-paths {out}")

    # exactly the registered bytes, the registry's bundle and the signer's key
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == sorted([*signed.files, "model.sig"])
    assert (out / "model.sig").read_bytes() == registry.signature_material("fraud", "3")[0]
    # signing published the same bundle beside the model in the (local) artifact store
    from urllib.parse import urlparse

    assert (Path(urlparse(signed.artifact_uri).path) / "model.sig").read_bytes() == (out / "model.sig").read_bytes()
    assert key.read_bytes() == LocalSigner().public_key_pem()

    ok = upstream_verify(out, key)
    assert ok.returncode == 0, ok.stdout + ok.stderr

    code, stdout, err = run_cli("model", "verify", "--bundle", str(out / "model.sig"),
                                "--public-key", str(key), "-o", "json")
    assert code == 0, err
    assert json.loads(stdout)["root_digest"] == signed.root_digest

    target = out / "weights" / "part-1.bin"
    os.chmod(target, 0o644)
    data = bytearray(target.read_bytes())
    data[7] ^= 0xFF
    target.write_bytes(bytes(data))
    bad = upstream_verify(out, key)
    assert bad.returncode != 0
    assert "part-1.bin" in bad.stdout + bad.stderr

    code, _, err = run_cli("model", "verify", "--bundle", str(out / "model.sig"), "--public-key", str(key))
    assert code == 8
    assert "'weights/part-1.bin' was changed" in err


def test_verify_bundle_against_the_registry(signed: registry.ModelVersion, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """With NAME:V the registry's key is used and the bundle must be that version's: another
    version's bundle (and bytes) is refused, even though it verifies on its own."""
    out = export("fraud", "3", tmp_path / "fraud-3").directory
    code, stdout, err = run_cli("model", "verify", "fraud:3", "--bundle", f"{out}/model.sig")
    assert code == 0, err
    assert "key from registry" in " ".join(stdout.split())

    registry.register("fraud", "4", make_model(tmp_path / "src4" / "fraud", seed="z"), code_commit="abcdef1")
    registry.sign("fraud", "4")
    other = export("fraud", "4", tmp_path / "fraud-4").directory
    code, _, err = run_cli("model", "verify", "fraud:3", "--bundle", f"{other}/model.sig")
    assert code == 8 and "vouches for another model" in err

    code, _, err = run_cli("model", "verify", "--bundle", f"{other}/model.sig")
    assert code == 2 and "public key" in err


def test_export_refuses_a_tampered_store_and_leaves_nothing(signed: registry.ModelVersion, tmp_path: Path) -> None:
    from urllib.parse import urlparse

    stored = Path(urlparse(signed.artifact_uri).path) / "config.json"
    os.chmod(stored, 0o644)
    stored.write_text('{"arch": "mlp", "seed": "evil"}')
    out = tmp_path / "out" / "fraud-3"
    with pytest.raises(VerificationFailed) as exc:
        export("fraud", "3", out)
    assert "config.json" in exc.value.message
    assert not out.exists() and not (tmp_path / "out" / "fraud-3.pub.pem").exists()
    assert [p.name for p in (tmp_path / "out").iterdir()] == []  # no staging directory left behind

    from control_plane import audit

    denied = [e for e in audit.entries() if e.action == "model.export"]
    assert denied and denied[-1].decision == "deny" and "config.json" in denied[-1].reasons[0]


def test_export_never_overwrites_and_needs_a_signature_and_the_permission(
    roles: Path, act_as: Callable[[str], None], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    act_as("eli")
    registry.register("fraud", "5", make_model(tmp_path / "src" / "fraud"), code_commit="abcdef1")
    with pytest.raises(VerificationFailed, match="not signed"):
        export("fraud", "5", tmp_path / "a")
    registry.sign("fraud", "5")

    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    with pytest.raises(Conflict, match="not an empty directory"):
        export("fraud", "5", busy)
    assert (busy / "keep.txt").read_text() == "mine"
    (tmp_path / "b.pub.pem").write_text("mine")
    with pytest.raises(Conflict, match="exists"):
        export("fraud", "5", tmp_path / "b")

    code, _, err = run_cli("--as", "dana", "model", "export", "fraud:5", str(tmp_path / "c"))
    assert code == 4 and "model.export" in err
    assert not (tmp_path / "c").exists()

    empty = tmp_path / "empty"
    empty.mkdir()
    result = export("fraud", "5", empty, public_key_out=tmp_path / "keys" / "signer.pem")
    assert Path(result.public_key).read_bytes() == LocalSigner().public_key_pem()
    shutil.rmtree(empty)


def test_a_model_with_git_files_needs_the_printed_flag(roles: Path, act_as: Callable[[str], None],
                                                       tmp_path: Path) -> None:
    """We sign git files too; the upstream CLI skips them unless told not to, which is why the
    command mlctl prints carries --no-ignore-git-paths."""
    act_as("eli")
    src = make_model(tmp_path / "src" / "llm")
    (src / ".gitattributes").write_text("*.bin filter=lfs diff=lfs merge=lfs -text\n")
    registry.register("llm", "1", src, code_commit="abcdef1")
    registry.sign("llm", "1")
    result = export("llm", "1", tmp_path / "llm-1")
    out, key = Path(result.directory), Path(result.public_key)
    assert (out / ".gitattributes").is_file()
    ok = upstream_verify(out, key, "--no-ignore-git-paths")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert upstream_verify(out, key).returncode != 0  # the short form skips .gitattributes
