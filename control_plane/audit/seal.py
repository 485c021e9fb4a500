"""The host seal: an HMAC-SHA256 of each leaf hash with a key that never enters the database.

Signed tree heads are issued in batches (every N entries or T seconds), so the newest entries
are not yet covered by a signature. The seal covers them: someone who can write the database but
not read ``$MLCTL_HOME/keys`` cannot add or rewrite an entry with a valid seal, and verification
names exactly the first entry whose seal fails. It is a host-side check (the host holds the key);
what the host itself cannot rewrite is proven by the signed heads anchored off the host.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache
from pathlib import Path

from control_plane.settings import current as settings
from control_plane.settings import host_secret, state_dir

SEAL_KEY_FILE = "audit-seal.key"


def key_path() -> Path:
    return state_dir("keys") / SEAL_KEY_FILE


def _load(path: Path) -> bytes:
    return host_secret(path, "the audit seal key")


def key() -> bytes:
    # Cached per $MLCTL_HOME: resolving the path creates directories, too slow for every append.
    return _key_for(str(settings().home or ""))


@lru_cache(maxsize=8)
def _key_for(_home: str) -> bytes:
    return _load(key_path())


def seal(leaf: bytes, seal_key: bytes | None = None) -> str:
    return hmac.digest(seal_key or key(), leaf, "sha256").hex()


class Sealer:
    """HMAC-SHA256 with the pads hashed once (RFC 2104): per leaf two hash copies instead of a full
    HMAC set-up, which is most of the cost when verifying a million seals."""

    def __init__(self, seal_key: bytes | None = None) -> None:
        k = (seal_key or key()).ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in k))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in k))

    def hexdigest(self, leaf: bytes) -> str:
        inner = self._inner.copy()
        inner.update(leaf)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()
