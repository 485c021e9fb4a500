"""What one audit entry is, as bytes: the leaf of the Merkle tree.

An entry's leaf data is the canonical JSON (sorted keys, no whitespace, UTF-8) of its hashed fields,
sequence number included, so moving an entry to another position changes its leaf like an edit.
The JSON-valued columns are stored already canonical, so :func:`leaf_data` builds the bytes by
concatenation instead of re-serialising (verification of a million entries depends on it); a test
checks it equals ``canonical_json`` of the decoded entry.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring  # the C encoder json.dumps uses with ensure_ascii=False
from typing import Any

# Hashed fields, in canonical (sorted) order. ``identity`` joined in schema 0004; entries from the
# old hash chain have it null.
HASHED_FIELDS = (
    "action", "actor", "decision", "details", "digests", "host", "identity", "reasons", "roles", "seq",
    "subject", "ts",
)
JSON_FIELDS = frozenset({"details", "digests", "identity", "reasons", "roles"})


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8: the same value always gives the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


@dataclass(frozen=True)
class Identity:
    """Who acted, and how we know. ``method`` says how the identity was established:
    ``asserted`` (``--as`` / MLCTL_ACTOR, dev tier only), ``os-user``, ``oidc`` (a verified token:
    then ``issuer``, ``subject`` and ``client`` are the token's ``iss``, ``sub`` and ``azp``/``client_id``),
    ``delegated`` (a token the *server* verified, handed to the steps of one pipeline run it drives
    with an HMAC-authenticated credential bound to that run: ``issuer``/``subject``/``client`` as the
    server verified them; the entry's ``details.identity`` names the run and ``delegated_by``),
    or ``unknown``. ``kind`` is ``person`` or ``workload`` when the token says so."""

    actor: str
    roles: Sequence[str] = ()
    method: str = "asserted"
    issuer: str | None = None
    subject: str | None = None
    client: str | None = None
    kind: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"actor": self.actor, "roles": [str(r) for r in self.roles], "method": self.method,
                "issuer": self.issuer, "subject": self.subject, "client": self.client, "kind": self.kind,
                "extra": dict(self.extra)}


def leaf_data(row: Sequence[Any]) -> bytes:
    """The leaf bytes from stored column values in ``HASHED_FIELDS`` order (JSON columns as their
    stored canonical text, ``identity`` may be None); extra trailing items are ignored."""
    action, actor, decision, details, digests, host, identity, reasons, roles, seq, subject, ts = row[:12]
    e = encode_basestring
    return (
        f'{{"action":{e(action)},"actor":{e(actor)},"decision":{e(decision)},"details":{details},'
        f'"digests":{digests},"host":{e(host)},"identity":{"null" if identity is None else identity},'
        f'"reasons":{reasons},"roles":{roles},"seq":{int(seq)},"subject":{e(subject)},"ts":{e(ts)}}}'
    ).encode()


def stored_columns(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Entry fields → column values (JSON fields as canonical text, a null identity as None)."""
    out: dict[str, Any] = {}
    for name in HASHED_FIELDS:
        value = fields[name]
        if name in JSON_FIELDS:
            out[name] = None if (name == "identity" and value is None) else canonical_json(value)
        else:
            out[name] = value
    return out
