"""The audit log as a transparency log: RFC 9162 hashing and proofs (checked against sigstore's
independent implementation and the Certificate Transparency test vectors), batched signed heads,
`mlctl audit prove`, the upgrade from the old hash chain, and anchoring in an object-locked S3
bucket on the AWS emulator that catches a rollback of both the database and $MLCTL_HOME."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from control_plane import audit
from control_plane.audit import heads, merkle
from control_plane.audit.entry import HASHED_FIELDS, canonical_json, leaf_data, stored_columns
from control_plane.settings import DEFAULT_BLUEPRINT
from control_plane.store import db, get_engine
from tests.cli_runner import run_mlctl

# --- RFC 9162 hashing and proofs ---


def _mth(d: list[bytes]) -> bytes:
    """MTH straight from RFC 9162 §2.1.1, recursively: the reference the fast code must match."""
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return d[0]
    k = 1
    while k * 2 < len(d):
        k *= 2
    return hashlib.sha256(b"\x01" + _mth(d[:k]) + _mth(d[k:])).digest()


def test_tree_hash_matches_the_certificate_transparency_vectors() -> None:
    # The eight leaves of the RFC 6962 / CT test suite and their published roots.
    inputs = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43",
              b"\x50\x51\x52\x53\x54\x55\x56\x57", bytes(range(0x60, 0x70))]
    leaves = [merkle.leaf_hash(x) for x in inputs]
    assert merkle.root(leaves[:1]).hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    assert merkle.root(leaves).hex() == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    assert merkle.root([]) == hashlib.sha256(b"").digest()


def test_inclusion_and_consistency_proofs_for_every_shape() -> None:
    from sigstore._internal import merkle as rekor  # sigstore's own RFC 6962 verifier (Trillian's algorithm)

    leaves = [merkle.leaf_hash(i.to_bytes(2, "big")) for i in range(33)]
    for n in range(1, 34):
        root = _mth(leaves[:n])
        assert merkle.root(leaves[:n]) == root
        for m in range(n):
            path = merkle.inclusion_proof(leaves, m, n)
            merkle.verify_inclusion(leaves[m], m, n, path, root)
            inner, border = rekor._decomp_inclusion_proof(m, n)
            assert len(path) == inner + border
            assert rekor._chain_border_right(rekor._chain_inner(leaves[m], path[:inner], m), path[inner:]) == root
            with pytest.raises(merkle.ProofError):
                merkle.verify_inclusion(merkle.leaf_hash(b"not in the tree"), m, n, path, root)
        for m in range(1, n + 1):
            proof = merkle.consistency_proof(leaves, m, n)
            merkle.verify_consistency(m, n, _mth(leaves[:m]), root, proof)
            if m < n:
                forked = _mth([*leaves[: m - 1], merkle.leaf_hash(b"forged")])
                with pytest.raises(merkle.ProofError):
                    merkle.verify_consistency(m, n, forked, root, proof)
                with pytest.raises(merkle.ProofError):
                    merkle.verify_consistency(m, n, _mth(leaves[:m]), root, proof[:-1])


def test_leaf_bytes_are_the_canonical_json_of_the_entry() -> None:
    fields = {"seq": 7, "ts": "2026-12-01T00:00:00.000000Z", "actor": 'o"mar\\', "roles": ["approver"],
              "action": "approve", "subject": "model/دبي:1\n\t\u2028", "decision": "allow", "reasons": ["x\x01"],
              "digests": {"b": "2", "a": "1"}, "details": {"z": [1, {"y": None}], "é": 1.5}, "host": "h",
              "identity": {"actor": "omar", "issuer": "https://idp", "subject": "42", "roles": []}}
    cols = stored_columns(fields)
    assert leaf_data([cols[f] for f in HASHED_FIELDS]) == canonical_json(fields).encode()
    cols = stored_columns({**fields, "identity": None})
    assert leaf_data([cols[f] for f in HASHED_FIELDS]) == canonical_json({**fields, "identity": None}).encode()


# --- heads, proofs and the CLI ---


def test_heads_are_issued_every_n_entries_and_cover_the_tail_later(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLCTL_AUDIT_HEAD_EVERY", "10")
    monkeypatch.setenv("MLCTL_AUDIT_HEAD_SECONDS", "3600")
    for i in range(25):
        audit.record(action="test.batch", subject=f"s:{i}")
    # The first append of a new log signs at once; then one head per 10 entries, never per entry.
    assert [h["size"] for h in audit.signed_heads()] == [1, 11, 21]
    report = audit.verify()
    assert report.ok, report.problems
    assert report.checkpoint is not None and report.checkpoint["size"] == 21
    assert any("entries #22..#25 are sealed but not yet covered" in n for n in report.notes), report.notes
    assert audit.checkpoint().size == 25  # type: ignore[union-attr]
    local, _ = heads.read_local()
    assert [h.size for h in local] == [1, 11, 21, 25]


def test_prove_prints_an_inclusion_proof_an_auditor_can_check_alone(
    db_url: str, tmp_path: Path
) -> None:
    from control_plane.access.roles import write_assignments
    from control_plane.signing.keys import verify_signature
    from control_plane.signing.signers import LocalSigner

    write_assignments({"ali": ["auditor"]})
    for i in range(6):
        audit.record(action="model.register", subject=f"m:{i}")
    audit.checkpoint()
    cmd = ("--as", "ali", "audit", "prove", "4", "-o", "json")
    res = run_mlctl(*cmd)
    assert res.returncode == 0, res.stderr
    proof = json.loads(res.stdout)
    # Everything below uses only the proof document and the public key: what an auditor holds.
    entry, head = proof["entry"], proof["head"]
    leaf = hashlib.sha256(b"\x00" + canonical_json({k: entry[k] for k in HASHED_FIELDS}).encode()).digest()
    assert leaf.hex() == proof["leaf_hash"] and proof["tree_size"] == head["size"] == 6
    merkle.verify_inclusion(leaf, 3, 6, [bytes.fromhex(h) for h in proof["inclusion_path"]], bytes.fromhex(head["root"]))
    signed = heads.SIGNING_CONTEXT + canonical_json({k: v for k, v in head.items() if k != "signature"}).encode()
    assert verify_signature(LocalSigner().public_key_pem(), signed, base64.b64decode(head["signature"]))

    human = run_mlctl(*cmd[:-2])
    assert human.returncode == 0 and "entry #4 is included in the signed tree head #6" in human.stdout

    with get_engine().begin() as conn:
        conn.execute(sa.text("UPDATE audit_entries SET subject = 'evil' WHERE seq = 4"))
    res = run_mlctl(*cmd)
    assert res.returncode == 8 and "entry #4 is not included in the signed tree head #6" in " ".join(res.stderr.split())

    missing = run_mlctl(*cmd[:-3], "99")
    assert missing.returncode == 6 and "does not exist" in missing.stderr


def test_consistency_proof_between_two_heads(db_url: str) -> None:
    for i in range(5):
        audit.record(action="a", subject=str(i))
    audit.checkpoint()
    for i in range(8):
        audit.record(action="b", subject=str(i))
    audit.checkpoint()
    out = audit.consistency(5)
    assert out["verified"] and out["old"]["size"] == 5 and out["new"]["size"] == 13
    merkle.verify_consistency(5, 13, bytes.fromhex(out["old"]["root"]), bytes.fromhex(out["new"]["root"]),
                              [bytes.fromhex(h) for h in out["consistency_path"]])


def test_heads_only_verify_with_the_operators_keyring(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    from control_plane.signing.keys import spki_pem

    for i in range(3):
        audit.record(action="a", subject=str(i))
    audit.checkpoint()
    other = tmp_path / "operator.pem"
    other.write_bytes(spki_pem(ec.generate_private_key(ec.SECP256R1()).public_key()))
    monkeypatch.setenv("MLCTL_AUDIT_TRUSTED_KEYS", str(other))
    report = audit.verify()
    assert not report.ok and report.first_bad == 1
    assert any("signature does not verify with keyring" in p for p in report.problems), report.problems
    monkeypatch.setenv("MLCTL_AUDIT_TRUSTED_KEYS", str(tmp_path / "absent.pem"))
    with pytest.raises(Exception, match="MLCTL_AUDIT_TRUSTED_KEYS"):
        audit.verify()


def test_an_auditor_verifies_an_export_offline(tmp_path: Path) -> None:
    from control_plane.audit.offline import verify_export
    from control_plane.signing.signers import LocalSigner

    for i in range(7):
        audit.record(action="model.register", subject=f"m:{i}")
    audit.checkpoint()
    export = tmp_path / "log.jsonl"
    audit.export(export)
    key = tmp_path / "audit-key.pem"
    key.write_bytes(LocalSigner().public_key_pem())
    copied = tmp_path / "heads"
    shutil.copytree(heads.local_dir(), copied)  # stands in for `aws s3 cp --recursive` of the bucket
    report = verify_export(export, [copied / "heads.jsonl"], [key])
    assert report.ok and report.entries == 7 and report.checkpoint["size"] == 7, report.problems

    lines = export.read_text().splitlines()
    edited = json.loads(lines[3])
    edited["subject"] = "evil"
    (tmp_path / "edited.jsonl").write_text("\n".join([*lines[:3], json.dumps(edited), *lines[4:]]) + "\n")
    report = verify_export(tmp_path / "edited.jsonl", [copied / "heads.jsonl"], [key])
    assert not report.ok and report.first_bad == 4 and "entry #4: content does not match" in report.problems[0]

    (tmp_path / "short.jsonl").write_text("\n".join(lines[:5]) + "\n")
    res = run_mlctl("audit", "verify", "--export", str(tmp_path / "short.jsonl"), "--heads", str(copied),
                    "--public-key", str(key))
    assert res.returncode == 8 and "entry #6..#7 is missing" in " ".join(res.stderr.split()), res.stderr


# --- the upgrade from the hash chain (migration 0004) ---


def _old_chain_rows(n: int) -> list[dict[str, Any]]:
    rows, prev = [], "0" * 64
    for seq in range(1, n + 1):
        fields = {"seq": seq, "ts": f"2026-11-0{seq}T00:00:00.000000Z", "actor": "eli", "roles": ["ml-engineer"],
                  "action": "model.register", "subject": f"m:{seq}", "decision": "allow", "reasons": [],
                  "digests": {"root": f"sha256:{seq}"}, "details": {}, "host": "h"}
        h = hashlib.sha256(f"{prev}\n{canonical_json(fields)}".encode()).hexdigest()
        rows.append({**{k: canonical_json(v) if isinstance(v, list | dict) else v for k, v in fields.items()},
                     "prev_hash": prev, "entry_hash": h, "checkpoint": "{}"})
        prev = h
    return rows


def _database_at_0002(url: str) -> sa.Engine:
    from alembic import command
    from alembic.config import Config

    engine = sa.create_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(db.MIGRATIONS_DIR))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
    return engine


@pytest.mark.parametrize("tampered", [False, True])
def test_upgrade_from_the_hash_chain(db_url: str, tampered: bool) -> None:
    engine = _database_at_0002(db_url)
    rows = _old_chain_rows(3)
    if tampered:
        rows[1]["subject"] = "evil"
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO audit_entries (seq, ts, actor, roles, action, subject, decision, reasons, digests, details, "
            "host, prev_hash, entry_hash, checkpoint) VALUES (:seq, :ts, :actor, :roles, :action, :subject, "
            ":decision, :reasons, :digests, :details, :host, :prev_hash, :entry_hash, :checkpoint)"), rows)
        conn.execute(sa.text("UPDATE audit_head SET seq = 3, entry_hash = :h WHERE id = 1"), {"h": rows[-1]["entry_hash"]})
    engine.dispose()
    if tampered:
        from control_plane.errors import VerificationFailed

        with pytest.raises(VerificationFailed, match="audit entry #2 fails the old hash chain"):
            get_engine()
        return
    audit.record(action="after.upgrade", subject="x")  # the first append after the upgrade signs a head
    report = audit.verify()
    assert report.ok, report.problems
    assert report.entries == 4 and report.checkpoint is not None and report.checkpoint["size"] == 4
    old = audit.entries()[0]
    assert old.identity is None and old.subject == "m:1"
    assert audit.prove(2)["verified"]


# --- anchoring: a rollback of the database and $MLCTL_HOME together ---


@pytest.fixture()
def anchored_env(aws_emulator: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """An emulated environment of its own (bucket and KMS key not shared with other tests), heads
    signed by its KMS key, verified with the operator's keyring, and anchoring required."""
    import boto3

    name = "aud-" + uuid.uuid4().hex[:8]
    spec = yaml.safe_load(DEFAULT_BLUEPRINT.read_text())
    spec["name"] = name
    spec["registries"]["log_bucket"] = f"{name}-audit-logs"
    spec["registries"]["model_bucket"] = f"{name}-models"
    spec["state"]["bucket"] = f"{name}-tfstate"
    bp = tmp_path / "blueprint.yaml"
    bp.write_text(yaml.safe_dump(spec))
    kw: dict[str, Any] = {"endpoint_url": aws_emulator, "region_name": "me-central-1"}
    kms = boto3.client("kms", **kw)
    key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=f"alias/{name}-signing", TargetKeyId=key)
    from cryptography.hazmat.primitives import serialization

    der = kms.get_public_key(KeyId=key)["PublicKey"]
    pem = serialization.load_der_public_key(der).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    keyring = tmp_path / "audit-keyring.pem"
    keyring.write_bytes(pem)
    for k, v in {"MLCTL_AUDIT_BLUEPRINT": str(bp), "MLCTL_AUDIT_SIGNER": "kms", "MLCTL_AUDIT_ANCHOR": "s3",
                 "MLCTL_AUDIT_TRUSTED_KEYS": str(keyring), "MLCTL_AUDIT_HEAD_SECONDS": "3600"}.items():
        monkeypatch.setenv(k, v)
    return {"bucket": spec["registries"]["log_bucket"], "s3": boto3.client("s3", **kw)}


def _snapshot(url: str, home: Path, dest: Path) -> Any:
    """An earlier copy of the database and of $MLCTL_HOME/audit, as a backup would hold."""
    shutil.copytree(home / "audit", dest / "audit")
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as src, sqlite3.connect(dest / "db.sqlite") as dst:
            src.backup(dst)
        return None
    with get_engine().connect() as conn:
        return {t: [dict(r._mapping) for r in conn.execute(sa.text(f"SELECT * FROM {t}"))]  # noqa: S608
                for t in ("audit_entries", "audit_head", "audit_tree_heads")}


def _roll_back(url: str, home: Path, dest: Path, rows: Any) -> None:
    db.reset_engines()
    shutil.rmtree(home / "audit")
    shutil.copytree(dest / "audit", home / "audit")
    if url.startswith("sqlite"):
        with sqlite3.connect(dest / "db.sqlite") as src, sqlite3.connect(url.removeprefix("sqlite:///")) as dst:
            src.backup(dst)
        return
    with get_engine().begin() as conn:
        for table, values in rows.items():
            conn.execute(sa.text(f"DELETE FROM {table}"))  # noqa: S608
            if values:
                cols = list(values[0])
                conn.execute(sa.text(f"INSERT INTO {table} ({', '.join(cols)}) "  # noqa: S608
                                     f"VALUES ({', '.join(':' + c for c in cols)})"), values)


def test_rollback_of_database_and_home_is_caught_by_the_anchored_heads(
    db_url: str, mlctl_home: Path, anchored_env: dict[str, Any], tmp_path: Path
) -> None:
    s3, bucket = anchored_env["s3"], anchored_env["bucket"]
    for i in range(5):
        audit.record(action="model.register", subject=f"m:{i + 1}")
    audit.checkpoint()
    backup = _snapshot(db_url, mlctl_home, tmp_path)

    for i in range(5, 10):
        audit.record(action="model.approve", subject=f"m:{i + 1}")
    head = audit.checkpoint()
    assert head is not None and head.size == 10 and head.signer == "aws-kms"
    report = audit.verify()
    assert report.ok, report.problems
    assert report.anchor is not None and report.anchor["size"] == 10 and report.anchor["reconciled"]

    # An auditor checks the same log from the bucket's heads and the KMS public key alone.
    audit.export(tmp_path / "log.jsonl")
    copied = tmp_path / "bucket-heads"
    copied.mkdir()
    for obj in s3.list_objects_v2(Bucket=bucket, Prefix="audit-heads/")["Contents"]:
        s3.download_file(bucket, obj["Key"], str(copied / obj["Key"].rsplit("/", 1)[1]))
    res = run_mlctl("audit", "verify", "--export", str(tmp_path / "log.jsonl"), "--heads", str(copied),
                    "--public-key", os.environ["MLCTL_AUDIT_TRUSTED_KEYS"])
    assert res.returncode == 0 and "audit log intact: 10 entries; signed head #10" in res.stdout, res.stderr

    # The heads are in the bucket under COMPLIANCE retention: not even their owner can delete them.
    objects = s3.list_object_versions(Bucket=bucket, Prefix="audit-heads/")["Versions"]
    assert sorted(int(o["Key"].rsplit("/", 1)[1][:12]) for o in objects) == [1, 5, 10]
    newest = max(objects, key=lambda o: o["Key"])
    locked = s3.head_object(Bucket=bucket, Key=newest["Key"])  # moto's GetObjectRetention answers 500
    assert locked["ObjectLockMode"] == "COMPLIANCE" and locked["ObjectLockRetainUntilDate"].year >= 2027
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError, match="AccessDenied"):
        s3.delete_object(Bucket=bucket, Key=newest["Key"], VersionId=newest["VersionId"])

    # Roll both the database and $MLCTL_HOME/audit back to the copy taken at 5 entries: every local
    # head is consistent with the rolled-back tree; only the bucket remembers head #10.
    _roll_back(db_url, mlctl_home, tmp_path, backup)
    report = audit.verify()
    assert not report.ok and report.first_bad == 6, report.problems
    assert any("entry #6..#10 is missing: cannot reconcile the anchored signed tree head #10 (s3://" in p
               and "rolled back" in p for p in report.problems), report.problems

    res = run_mlctl("audit", "verify", "-o", "json")
    assert res.returncode == 8, res.stderr
    assert json.loads(res.stdout)["first_bad"] == 6
    assert "cannot reconcile the anchored signed tree head #10" in " ".join(res.stderr.split())

    # Rewriting history on top of the rollback (even signed with the environment's own KMS key, which
    # the host may use) forks the log: the new head #10 lands beside the old one, and is caught.
    for i in range(5, 10):
        audit.record(action="model.approve", subject=f"other:{i + 1}")
    assert audit.checkpoint().size == 10  # type: ignore[union-attr]
    report = audit.verify()
    assert not report.ok and report.first_bad == 6, report.problems
    assert any("entries #6..#10: cannot reconcile the anchored signed tree head #10" in p
               and "forked" in p for p in report.problems), report.problems
