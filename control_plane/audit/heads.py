"""Signed tree heads (RFC 9162 §4.10 in spirit): ``(log, size, root, ts)`` signed by the audit key.

A head commits to every entry ``1..size``: the Merkle root changes if any of them changes, and a
consistency proof shows a later head extends an earlier one. Heads are kept in three places:

- the database (``audit_tree_heads``, and the newest in ``audit_head.checkpoint``),
- ``$MLCTL_HOME/audit/<log>/heads.jsonl`` (outside the database), and
- the environment's object-locked audit bucket (``anchor.py``), which the host cannot rewrite.

Heads are verified only with keys from the operator's keyring (``MLCTL_AUDIT_TRUSTED_KEYS``) or
the configured signer's own public key (the KMS key's, fetched from KMS), never a key stored
beside the data.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from control_plane import environments
from control_plane.audit.entry import canonical_json
from control_plane.errors import MlctlError
from control_plane.settings import (
    audit_blueprint,
    audit_log_id,
    audit_signer_kind,
    audit_trusted_keys,
    state_dir,
)
from control_plane.signing.keys import key_fingerprint, load_p256_public_key
from control_plane.signing.signers import get_signer
from control_plane.store import database_url

# Domain separation: a head signature can never be mistaken for a model signature by the same key.
SIGNING_CONTEXT = b"mlctl-audit-tree-head/v1\n"


@dataclass(frozen=True)
class SignedHead:
    log: str
    size: int
    root: str  # hex SHA-256
    ts: str
    key_id: str
    signer: str
    signature: str  # base64 DER ECDSA P-256 over SIGNING_CONTEXT + canonical_json(payload)

    def payload(self) -> dict[str, Any]:
        return {"log": self.log, "size": self.size, "root": self.root, "ts": self.ts, "key_id": self.key_id,
                "signer": self.signer}

    def signed_bytes(self) -> bytes:
        return SIGNING_CONTEXT + canonical_json(self.payload()).encode()

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return canonical_json(self.as_dict())

    @classmethod
    def from_json(cls, text: str | bytes) -> SignedHead:
        d = json.loads(text)
        return cls(log=str(d["log"]), size=int(d["size"]), root=str(d["root"]), ts=str(d["ts"]),
                   key_id=str(d["key_id"]), signer=str(d["signer"]), signature=str(d["signature"]))


def log_id() -> str:
    """One log per database, so pointing MLCTL_DB_URL elsewhere never compares unrelated trees."""
    configured = audit_log_id()
    if configured:
        return configured
    url = make_url(database_url()).render_as_string(hide_password=True)
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def audit_environment() -> Any:
    return environments.load(audit_blueprint())


def signer() -> Any:
    kind = audit_signer_kind()
    return get_signer(kind, audit_environment() if kind == "kms" else None)


def sign(size: int, root: bytes, ts: str, *, log: str | None = None, with_signer: Any = None) -> SignedHead:
    s = with_signer or signer()
    unsigned = SignedHead(log=log or log_id(), size=size, root=root.hex(), ts=ts, key_id=s.key_id, signer=s.kind,
                          signature="")
    sig = s.sign(unsigned.signed_bytes())
    return SignedHead(**{**unsigned.as_dict(), "signature": base64.b64encode(sig).decode()})


class Keyring:
    """Public keys heads may be signed with, by key id (sha256 of the SubjectPublicKeyInfo)."""

    def __init__(self, pems: dict[str, bytes], source: str) -> None:
        self.pems = pems
        self.source = source
        # Keys parsed once, and each distinct head checked once: the same head sits in the database,
        # the local copy and the bucket, and a large log has thousands of heads.
        self._keys = {kid: load_p256_public_key(pem) for kid, pem in pems.items()}
        self._seen: dict[tuple[str, str, str], bool] = {}

    @classmethod
    def trusted(cls) -> Keyring:
        paths = audit_trusted_keys()
        if paths:
            pems: dict[str, bytes] = {}
            for p in paths:
                try:
                    pem = p.read_bytes()
                    load_p256_public_key(pem)
                except (OSError, ValueError, MlctlError) as exc:
                    raise MlctlError(f"MLCTL_AUDIT_TRUSTED_KEYS: {p} is not a readable P-256 public key: {exc}",
                                     hint="list PEM public keys (e.g. from `aws kms get-public-key`)") from None
                pems[key_fingerprint(pem)] = pem
            return cls(pems, "keyring " + os.pathsep.join(str(p) for p in paths))
        s = signer()
        return cls({s.key_id: s.public_key_pem()}, f"the {s.kind} signer's public key")

    def verifies(self, head: SignedHead) -> bool:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        key = self._keys.get(head.key_id)
        if key is None:
            return False
        data = head.signed_bytes()
        memo = (head.key_id, head.signature, data.decode())
        if memo not in self._seen:
            try:
                key.verify(base64.b64decode(head.signature, validate=True), data, ec.ECDSA(hashes.SHA256()))
                self._seen[memo] = True
            except (InvalidSignature, ValueError):
                self._seen[memo] = False
        return self._seen[memo]


# --- the local copy, outside the database ---

def local_dir(log: str | None = None) -> Path:
    return state_dir("audit", log or log_id())


def local_file(log: str | None = None) -> Path:
    return local_dir(log) / "heads.jsonl"


def write_local(head: SignedHead) -> None:
    """Append to the local copy (concurrent writers serialise on a lock; one head per line)."""
    path = local_file(head.log)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            fh.write(head.to_json() + "\n")
            fh.flush()
            os.fsync(fh.fileno())


def read_local(log: str | None = None) -> tuple[list[SignedHead], list[str]]:
    """The heads of the local copy, and the problems with unreadable lines."""
    path = local_file(log)
    if not path.exists():
        return [], []
    out: list[SignedHead] = []
    problems: list[str] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(SignedHead.from_json(line))
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(f"{path}:{n}: an unreadable head ({exc})")
    return out, problems
