"""The tamper matrix: every way a model directory or its signature can be altered is refused, and the
reason names the file (or the signature). An untouched copy verifies."""

from __future__ import annotations

import base64
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from control_plane.errors import VerificationFailed
from control_plane.signing import (
    HashingConfig,
    LocalSigner,
    ModelVerificationFailed,
    model_digests,
    sign_model,
    verify_model,
)
from tests.signing.conftest import make_model


def _copy(model_dir: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "downloaded" / model_dir.name
    shutil.copytree(model_dir, dest)
    return dest


def test_untouched_copy_verifies(model_dir: Path, signer: LocalSigner, tmp_path: Path) -> None:
    bundle = sign_model(model_dir, signer)
    copy = _copy(model_dir, tmp_path)
    verified = verify_model(copy, bundle, signer.public_key_pem())
    root, files = model_digests(model_dir)
    assert verified.root_digest == root
    assert dict(verified.files) == files
    assert set(files) == {"weights.bin", "config.json", "tokenizer/vocab.txt", "tokenizer/merges.txt"}
    assert verified.key_id == signer.key_id
    assert verified.model_name == "sentiment-model"


def test_signature_file_inside_the_model_is_not_hashed(model_dir: Path, signer: LocalSigner) -> None:
    bundle = sign_model(model_dir, signer)
    (model_dir / "model.sig").write_bytes(bundle)
    verify_model(model_dir, bundle, signer.public_key_pem())
    assert "model.sig" not in model_digests(model_dir)[1]


def _change_byte(d: Path) -> None:
    data = bytearray((d / "weights.bin").read_bytes())
    data[12345] ^= 0x01
    (d / "weights.bin").write_bytes(bytes(data))


def _truncate(d: Path) -> None:
    with open(d / "weights.bin", "r+b") as fh:
        fh.truncate(1000)


def _extra(d: Path) -> None:
    (d / "tokenizer" / "backdoor.py").write_text("import os\n")


def _empty_extra(d: Path) -> None:
    (d / "README").touch()


def _missing(d: Path) -> None:
    (d / "tokenizer" / "vocab.txt").unlink()


def _rename(d: Path) -> None:
    (d / "config.json").rename(d / "config.old.json")


def _symlink(d: Path) -> None:
    (d / "config.json").unlink()
    os.symlink("/etc/hostname", d / "config.json")


def _dir_symlink(d: Path) -> None:
    os.symlink("/etc", d / "etc")


def _file_to_dir(d: Path) -> None:
    (d / "config.json").unlink()
    (d / "config.json").mkdir()
    (d / "config.json" / "inner").write_text('{"layers": 4, "hidden": 64}\n')


def _hide_in_signature_name(d: Path) -> None:
    (d / "model.sig").mkdir()
    (d / "model.sig" / "payload.py").write_text("import os\n")


def _fifo(d: Path) -> None:
    os.mkfifo(d / "pipe")


DIR_TAMPERS: dict[str, tuple[Callable[[Path], None], str, str]] = {
    # name: (tamper, expected problem kind, the path the reason must name)
    "changed-byte": (_change_byte, "changed", "weights.bin"),
    "truncated-file": (_truncate, "changed", "weights.bin"),
    "extra-file": (_extra, "extra", "tokenizer/backdoor.py"),
    "extra-empty-file": (_empty_extra, "extra", "README"),
    "missing-file": (_missing, "missing", "tokenizer/vocab.txt"),
    "renamed-file": (_rename, "renamed", "config.json"),
    "symlink-replacing-file": (_symlink, "symlink", "config.json"),
    "symlink-to-directory": (_dir_symlink, "symlink", "etc"),
    "file-replaced-by-directory": (_file_to_dir, "not-a-file", "config.json"),
    "fifo": (_fifo, "special-file", "pipe"),
    "directory-named-like-the-signature": (_hide_in_signature_name, "not-a-file", "model.sig"),
}


@pytest.mark.parametrize("name", sorted(DIR_TAMPERS))
def test_tampered_directory_is_refused(
    name: str, model_dir: Path, signer: LocalSigner, tmp_path: Path
) -> None:
    tamper, kind, path = DIR_TAMPERS[name]
    bundle = sign_model(model_dir, signer)
    copy = _copy(model_dir, tmp_path)
    tamper(copy)
    with pytest.raises(ModelVerificationFailed) as err:
        verify_model(copy, bundle, signer.public_key_pem())
    assert isinstance(err.value, VerificationFailed)
    assert err.value.exit_code == 8
    assert err.value.hint
    kinds = {(p.kind, p.path) for p in err.value.problems}
    assert (kind, path) in kinds, err.value.problems
    assert f"'{path}'" in err.value.message or path in err.value.message


def test_renamed_reason_names_both_names(model_dir: Path, signer: LocalSigner, tmp_path: Path) -> None:
    bundle = sign_model(model_dir, signer)
    copy = _copy(model_dir, tmp_path)
    _rename(copy)
    with pytest.raises(ModelVerificationFailed, match=r"'config.json' was renamed to 'config.old.json'"):
        verify_model(copy, bundle, signer.public_key_pem())


def test_file_replaced_by_directory_names_both(model_dir: Path, signer: LocalSigner, tmp_path: Path) -> None:
    bundle = sign_model(model_dir, signer)
    copy = _copy(model_dir, tmp_path)
    _file_to_dir(copy)
    with pytest.raises(
        ModelVerificationFailed, match=r"'config\.json' is signed as a file but is now a directory"
    ):
        verify_model(copy, bundle, signer.public_key_pem())


def test_symlinked_model_root_is_refused(model_dir: Path, signer: LocalSigner, tmp_path: Path) -> None:
    bundle = sign_model(model_dir, signer)
    link = tmp_path / "link-to-model"
    link.symlink_to(model_dir)
    with pytest.raises(ModelVerificationFailed, match="is a symlink"):
        verify_model(link, bundle, signer.public_key_pem())


def test_signing_refuses_a_symlink(model_dir: Path, signer: LocalSigner) -> None:
    _dir_symlink(model_dir)
    with pytest.raises(ModelVerificationFailed, match="'etc' is a symlink"):
        sign_model(model_dir, signer)


def test_signature_by_another_key(model_dir: Path, signer: LocalSigner, other_signer: LocalSigner) -> None:
    bundle = sign_model(model_dir, other_signer)
    with pytest.raises(ModelVerificationFailed, match="signed by another key") as err:
        verify_model(model_dir, bundle, signer.public_key_pem())
    assert err.value.problems[0].kind == "wrong-key"


def test_key_hint_forged_to_match(model_dir: Path, signer: LocalSigner, other_signer: LocalSigner) -> None:
    """Another key's bundle relabelled with our key's hint still fails: the ECDSA check decides."""
    theirs = json.loads(sign_model(model_dir, other_signer))
    ours = json.loads(sign_model(model_dir, signer))
    theirs["verificationMaterial"] = ours["verificationMaterial"]
    with pytest.raises(ModelVerificationFailed, match="does not verify") as err:
        verify_model(model_dir, json.dumps(theirs).encode(), signer.public_key_pem())
    assert err.value.problems[0].kind == "bad-signature"


def test_signature_of_another_model(model_dir: Path, signer: LocalSigner, tmp_path: Path) -> None:
    other = make_model(tmp_path / "fraud-model", seed=7)
    bundle = sign_model(other, signer)
    with pytest.raises(
        ModelVerificationFailed, match="signature is of another model \\('fraud-model'\\)"
    ) as err:
        verify_model(model_dir, bundle, signer.public_key_pem())
    assert {p.path for p in err.value.problems} >= {"weights.bin", "tokenizer/merges.txt"}


def test_truncated_bundle(model_dir: Path, signer: LocalSigner) -> None:
    bundle = sign_model(model_dir, signer)
    with pytest.raises(ModelVerificationFailed, match="signature bundle cannot be read"):
        verify_model(model_dir, bundle[: len(bundle) // 2], signer.public_key_pem())


def test_not_a_bundle(model_dir: Path, signer: LocalSigner) -> None:
    with pytest.raises(ModelVerificationFailed, match="cannot be read"):
        verify_model(model_dir, b'{"hello": "world"}', signer.public_key_pem())


def _edit_statement(bundle: bytes, edit: Callable[[dict], None]) -> bytes:
    doc = json.loads(bundle)
    statement = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    edit(statement)
    doc["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    return json.dumps(doc).encode()


def test_edited_ignore_list_in_bundle(model_dir: Path, signer: LocalSigner, tmp_path: Path) -> None:
    """Widening the ignore list inside a signed bundle (to hide an extra file) breaks the signature."""
    bundle = _edit_statement(
        sign_model(model_dir, signer),
        lambda s: s["predicate"]["serialization"]["ignore_paths"].append("tokenizer/backdoor.py"),
    )
    copy = _copy(model_dir, tmp_path)
    _extra(copy)
    with pytest.raises(ModelVerificationFailed, match="does not verify"):
        verify_model(copy, bundle, signer.public_key_pem())


def test_edited_digest_in_bundle(model_dir: Path, signer: LocalSigner) -> None:
    def edit(s: dict) -> None:
        s["predicate"]["resources"][0]["digest"] = "00" * 32

    with pytest.raises(ModelVerificationFailed, match="does not verify"):
        verify_model(model_dir, _edit_statement(sign_model(model_dir, signer), edit), signer.public_key_pem())


@pytest.mark.parametrize(
    ("config", "field"),
    [
        (HashingConfig(ignore_paths=("model.sig", "tokenizer")), "ignore_paths"),
        (HashingConfig(hash_type="blake2"), "hash_type"),
        (HashingConfig(allow_symlinks=True), "allow_symlinks"),
    ],
    ids=["wider-ignore-list", "other-algorithm", "symlinks-allowed"],
)
def test_validly_signed_bundle_with_another_hashing_config(
    config: HashingConfig, field: str, model_dir: Path, signer: LocalSigner
) -> None:
    """Even a genuine signature is refused when it was made with another hashing configuration."""
    from control_plane.signing import sign_digests

    if config.hash_type == "sha256":
        files = model_digests(model_dir, config)[1]
    else:
        import hashlib

        files = {
            p: hashlib.blake2b((model_dir / p).read_bytes()).hexdigest() for p in model_digests(model_dir)[1]
        }
    bundle = sign_digests(model_dir.name, files, signer, config=config)
    with pytest.raises(ModelVerificationFailed, match=f"hashing configuration differs .* in {field}") as err:
        verify_model(model_dir, bundle, signer.public_key_pem())
    assert err.value.problems[0].kind == "config"


def test_not_a_p256_public_key(model_dir: Path, signer: LocalSigner) -> None:
    bundle = sign_model(model_dir, signer)
    with pytest.raises(VerificationFailed, match="not a valid PEM"):
        verify_model(model_dir, bundle, b"-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")


def test_missing_model_dir(tmp_path: Path, signer: LocalSigner) -> None:
    with pytest.raises(ModelVerificationFailed, match="does not exist"):
        sign_model(tmp_path / "nope", signer)


def test_digests_match_upstream_hashing(tmp_path: Path) -> None:
    """Our fast hashing builds exactly the manifest model-signing's own serializer builds (same
    per-file digests, same root digest), including path ordering across directories."""
    from model_signing._signing import signing as ms_signing

    from control_plane.signing import PINNED_HASHING

    model = make_model(tmp_path / "ordering")
    (model / "a-c").write_text("dash sorts before slash as a string, after it as a path")
    (model / "a").mkdir()
    (model / "a" / "b").write_text("nested")
    (model / "model.sig").write_text("ignored")
    root, files = model_digests(model)
    upstream = PINNED_HASHING.upstream().hash(model)
    theirs = {d.identifier: d.digest.digest_hex for d in upstream.resource_descriptors()}
    assert files == theirs
    assert list(files) == list(theirs)  # same order, so the same root digest
    statement = ms_signing.Payload(upstream).statement.pb
    assert root == statement.subject[0].digest["sha256"]


def test_sign_digests_recorded_at_upload(model_dir: Path, signer: LocalSigner, tmp_path: Path) -> None:
    """The registry signs the digests it recorded at upload, under the registry's model name; a copy
    in a directory of any name verifies, and a changed copy fails naming the file and the model."""
    from control_plane.signing import sign_digests

    root, files = model_digests(model_dir)
    bundle = sign_digests("credit-risk", files, signer)
    copy = _copy(model_dir, tmp_path)
    assert verify_model(copy, bundle, signer.public_key_pem()).root_digest == root
    _change_byte(copy)
    with pytest.raises(
        ModelVerificationFailed, match=r"'weights\.bin' was changed.*names the model 'credit-risk'"
    ):
        verify_model(copy, bundle, signer.public_key_pem())


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    files=st.dictionaries(
        st.from_regex(r"[a-z]{1,6}(/[a-z]{1,6}){0,2}", fullmatch=True).filter(lambda p: p != "model.sig"),
        st.binary(min_size=1, max_size=2048),
        min_size=1,
        max_size=6,
    ),
    pick=st.integers(min_value=0),
    offset=st.integers(min_value=0),
)
def test_any_flipped_byte_is_found(
    files: dict[str, bytes], pick: int, offset: int, signer: LocalSigner
) -> None:
    import tempfile

    # a path cannot be both a file and a directory
    names = sorted(files)
    if any(b.startswith(a + "/") for a in names for b in names):
        return
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "m"
        for rel, data in files.items():
            (model / rel).parent.mkdir(parents=True, exist_ok=True)
            (model / rel).write_bytes(data)
        bundle = sign_model(model, signer)
        verify_model(model, bundle, signer.public_key_pem())
        victim = names[pick % len(names)]
        data = bytearray(files[victim])
        data[offset % len(data)] ^= 0x80
        (model / victim).write_bytes(bytes(data))
        with pytest.raises(ModelVerificationFailed) as err:
            verify_model(model, bundle, signer.public_key_pem())
        assert [(p.kind, p.path) for p in err.value.problems] == [("changed", victim)]


def test_statement_and_config_are_upstreams(model_dir: Path, signer: LocalSigner) -> None:
    """The statement we sign is, field for field, the one model-signing's Payload builds for the same
    manifest, and our serialization object is its _FileSerialization's."""
    import base64
    import json

    from google.protobuf import json_format
    from model_signing._signing import signing as ms_signing

    from control_plane.signing import PINNED_HASHING

    upstream_manifest = PINNED_HASHING.upstream().hash(model_dir)
    theirs = json.loads(json_format.MessageToJson(ms_signing.Payload(upstream_manifest).statement.pb))
    bundle = json.loads(sign_model(model_dir, signer))
    ours = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    assert ours == theirs
    assert PINNED_HASHING.serialization_parameters() == upstream_manifest.serialization_type
