"""The model-signing v1.0 wire format, written and read without importing model-signing.

model-signing's package imports sigstore-python (about half a second); ``mlctl model sign|verify``
runs as a fresh process each time, so we produce and check the same bytes ourselves: an in-toto
Statement v1 (predicate ``https://model_signing/signature/v1.0``) in a DSSE envelope inside a Sigstore
bundle v0.3, signed over the DSSE pre-authentication encoding (PAE). Tests hold this module to the
upstream implementation in both directions (upstream verifies ours, we verify upstream's).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"


class FormatError(ValueError):
    """The bundle or statement is not in the model-signing v1.0 format."""


def pae(payload: bytes, payload_type: str = PAYLOAD_TYPE) -> bytes:
    """DSSE v1 pre-authentication encoding: what the signature actually covers."""
    return b"DSSEv1 %d %s %d %s" % (len(payload_type), payload_type.encode(), len(payload), payload)


def statement(
    model_name: str, files: Mapping[str, str], root_digest: str, serialization: Mapping[str, Any]
) -> bytes:
    """The in-toto statement for ``files`` (relpath -> sha256 hex, already in manifest order)."""
    doc = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": model_name, "digest": {"sha256": root_digest}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "serialization": dict(serialization),
            "resources": [{"name": rel, "algorithm": "sha256", "digest": d} for rel, d in files.items()],
        },
    }
    return json.dumps(doc, indent=2).encode("utf-8")


def bundle(payload: bytes, signature: bytes, *, key_hint: str, keyid: str) -> bytes:
    doc = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": key_hint}, "tlogEntries": []},
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode("ascii"),
            "payloadType": PAYLOAD_TYPE,
            "signatures": [{"sig": base64.b64encode(signature).decode("ascii"), "keyid": keyid}],
        },
    }
    return json.dumps(doc, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True)
class Envelope:
    key_hint: str | None
    payload_type: str
    payload: bytes
    signature: bytes


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise FormatError(f"{what} is not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise FormatError(f"{what} is not valid base64") from None


def read_bundle(data: bytes) -> Envelope:
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"truncated or not JSON ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(doc, dict):
        raise FormatError("not a JSON object")
    if doc.get("mediaType") != BUNDLE_MEDIA_TYPE:
        raise FormatError(f"media type is {doc.get('mediaType')!r}, expected {BUNDLE_MEDIA_TYPE!r}")
    material = doc.get("verificationMaterial")
    envelope = doc.get("dsseEnvelope")
    if not isinstance(material, dict) or not isinstance(envelope, dict):
        raise FormatError("verificationMaterial or dsseEnvelope is missing")
    public_key = material.get("publicKey")
    hint = public_key.get("hint") if isinstance(public_key, dict) else None
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or len(signatures) != 1 or not isinstance(signatures[0], dict):
        raise FormatError("the DSSE envelope must hold exactly one signature")
    return Envelope(
        key_hint=hint if isinstance(hint, str) else None,
        payload_type=str(envelope.get("payloadType")),
        payload=_b64(envelope.get("payload"), "dsseEnvelope.payload"),
        signature=_b64(signatures[0].get("sig"), "dsseEnvelope.signatures[0].sig"),
    )


@dataclass(frozen=True)
class SignedStatement:
    model_name: str
    root_digest: str
    serialization: dict[str, Any]
    files: dict[str, str]  # relpath -> digest hex
    algorithms: frozenset[str]


def read_statement(envelope: Envelope) -> SignedStatement:
    """Parse a (signature-checked) payload with the checks model-signing's verifier makes."""
    if envelope.payload_type != PAYLOAD_TYPE:
        raise FormatError(f"payload type is {envelope.payload_type!r}, expected {PAYLOAD_TYPE!r}")
    try:
        doc = json.loads(envelope.payload)
        if doc["_type"] != STATEMENT_TYPE:
            raise FormatError(f"statement type is {doc['_type']!r}, expected {STATEMENT_TYPE!r}")
        if doc["predicateType"] != PREDICATE_TYPE:
            raise FormatError(f"predicate type is {doc['predicateType']!r}, expected {PREDICATE_TYPE!r}")
        subjects = doc["subject"]
        if len(subjects) != 1:
            raise FormatError(f"expected one subject, found {len(subjects)}")
        name, root = str(subjects[0]["name"]), str(subjects[0]["digest"]["sha256"])
        serialization = dict(doc["predicate"]["serialization"])
        files: dict[str, str] = {}
        algorithms: set[str] = set()
        h = hashlib.sha256()
        for resource in doc["predicate"]["resources"]:
            rel, algorithm, digest = (
                str(resource["name"]),
                str(resource["algorithm"]),
                str(resource["digest"]),
            )
            if rel in files:
                raise FormatError(f"resource '{rel}' is listed twice")
            h.update(bytes.fromhex(digest))
            files[rel] = digest
            algorithms.add(algorithm)
    except FormatError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise FormatError(f"the statement is malformed ({exc.__class__.__name__}: {exc})") from None
    if h.hexdigest() != root:
        raise FormatError(f"the statement is inconsistent: its resources hash to {h.hexdigest()}, not {root}")
    return SignedStatement(name, root, serialization, files, frozenset(algorithms))
