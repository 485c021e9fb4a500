"""The hash chain: canonical JSON of an entry, and each entry's hash over the previous one.

``entry_hash = sha256(prev_hash || "\\n" || canonical_json(entry))``, where the entry includes its
own sequence number: moving an entry to another position changes its hash, so reordering is
caught like an edit.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

HASHED_FIELDS = (
    "seq", "ts", "actor", "roles", "action", "subject", "decision", "reasons", "digests", "details", "host",
)


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8: the same value always gives the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def entry_hash(prev_hash: str, entry: dict[str, Any]) -> str:
    body = canonical_json({k: entry[k] for k in HASHED_FIELDS})
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()
