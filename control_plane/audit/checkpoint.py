"""Signed checkpoints of the chain head, kept in two places.

A hash chain alone cannot show that its newest entries were deleted: the shortened chain is still
a valid chain. So after every append the head (sequence number + hash) is signed and stored

- in the database (``audit_head.checkpoint``, written in the same transaction as the entry), and
- in ``$MLCTL_HOME/audit/checkpoint.json`` (outside the database).

Someone who can rewrite the database can roll its checkpoint back to an older *validly signed*
one together with deleting entries; the file copy, which that person cannot reach through the
database, still names the higher sequence number. Verification trusts the highest validly signed
checkpoint from either place, and only the trusted key (the local signing key), never a key
stored next to the data.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from control_plane.audit.chain import canonical_json
from control_plane.settings import state_dir


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    head: str
    ts: str
    key_id: str
    signer: str
    signature: str  # base64 DER ECDSA over canonical_json(payload)

    def payload(self) -> dict[str, Any]:
        return {"seq": self.seq, "head": self.head, "ts": self.ts, "key_id": self.key_id, "signer": self.signer}

    def to_json(self) -> str:
        return canonical_json({**self.payload(), "signature": self.signature})

    @classmethod
    def from_json(cls, text: str) -> Checkpoint:
        d = json.loads(text)
        return cls(
            seq=int(d["seq"]), head=str(d["head"]), ts=str(d["ts"]), key_id=str(d["key_id"]),
            signer=str(d["signer"]), signature=str(d["signature"]),
        )


def _signer() -> Any:
    # The same signing key that signs models; the local development key by default.
    from control_plane.signing.signers import get_signer

    return get_signer(os.environ.get("MLCTL_AUDIT_SIGNER", "local"))


def sign(seq: int, head: str, ts: str) -> Checkpoint:
    signer = _signer()
    payload = {"seq": seq, "head": head, "ts": ts, "key_id": signer.key_id, "signer": signer.kind}
    sig = signer.sign(canonical_json(payload).encode())
    return Checkpoint(signature=base64.b64encode(sig).decode(), **payload)


def trusted_signer() -> Any:
    """The key checkpoints must verify with (load once per verification run)."""
    return _signer()


def is_valid(cp: Checkpoint, signer: Any = None) -> bool:
    from control_plane.signing.keys import verify_signature

    signer = signer or _signer()
    if cp.key_id != signer.key_id:
        return False
    try:
        sig = base64.b64decode(cp.signature, validate=True)
    except ValueError:
        return False
    return verify_signature(signer.public_key_pem(), canonical_json(cp.payload()).encode(), sig)


def file_path() -> Path:
    """One file per database, so pointing MLCTL_DB_URL elsewhere never compares unrelated chains."""
    import hashlib

    from sqlalchemy.engine import make_url

    from control_plane.store import database_url

    url = make_url(database_url()).render_as_string(hide_password=True)
    return state_dir("audit") / f"checkpoint-{hashlib.sha256(url.encode()).hexdigest()[:16]}.json"


def write_file(cp: Checkpoint) -> None:
    """Replace the file copy if ``cp`` is newer; concurrent writers serialise on a lock file."""
    path = file_path()
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            current = read_file()
        except UnreadableCheckpoint:
            current = None
        if current is not None and current.seq >= cp.seq:
            return
        tmp = path.with_suffix(".tmp")
        tmp.write_text(cp.to_json() + "\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)


class UnreadableCheckpoint(Exception):
    pass


def read_file() -> Checkpoint | None:
    """The file copy; None when absent; UnreadableCheckpoint when someone garbled it."""
    path = file_path()
    if not path.exists():
        return None
    try:
        return Checkpoint.from_json(path.read_text())
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UnreadableCheckpoint(f"{path}: {exc}") from None
