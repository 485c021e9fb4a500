"""Provenance: an in-toto Statement v1 with a SLSA Provenance v1 predicate per model version,
signed as a DSSE envelope by the same signer that signs the model.

The subject is the model's signature root digest (what ``model-signing`` puts in its own in-toto
subject), so the provenance and the model signature are provably about the same bytes.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from control_plane import __version__
from control_plane.errors import VerificationFailed
from control_plane.signing import verify_signature

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
BUILD_TYPE = "https://github.com/sovereign-mlops/mlctl/model-register/v1"
BUILDER_ID = f"https://github.com/sovereign-mlops/mlctl@{__version__}"

__all__ = ["PAYLOAD_TYPE", "PREDICATE_TYPE", "STATEMENT_TYPE", "pae", "sign_statement", "statement",
           "verify_envelope"]


def statement(
    *,
    name: str,
    version: str,
    root_digest_hex: str,
    dependencies: list[dict[str, Any]],
    external_parameters: Mapping[str, Any],
    internal_parameters: Mapping[str, Any],
    invocation_id: str,
    started_on: str,
    finished_on: str,
    build_type: str = BUILD_TYPE,
    builder_id: str = BUILDER_ID,
) -> dict[str, Any]:
    """``build_type`` / ``builder_id`` default to a registration by mlctl; a pipeline run passes its
    own (the run is then the builder invocation, ``invocation_id`` its run id)."""
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": f"{name}:{version}", "digest": {"sha256": root_digest_hex}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": build_type,
                "externalParameters": dict(external_parameters),
                "internalParameters": dict(internal_parameters),
                "resolvedDependencies": dependencies,
            },
            "runDetails": {
                "builder": {"id": builder_id},
                "metadata": {"invocationId": invocation_id, "startedOn": started_on, "finishedOn": finished_on},
            },
        },
    }


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding: what is actually signed."""
    t = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(t), t, len(payload), payload)


def sign_statement(stmt: Mapping[str, Any], signer: Any) -> dict[str, Any]:
    """A DSSE envelope over the statement's canonical JSON."""
    payload = json.dumps(stmt, sort_keys=True, separators=(",", ":")).encode()
    sig = signer.sign(pae(PAYLOAD_TYPE, payload))
    return {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": signer.key_id, "sig": base64.b64encode(sig).decode()}],
    }


def verify_envelope(envelope: Mapping[str, Any], public_key_pem: bytes, root_digest_hex: str) -> dict[str, Any]:
    """Check the envelope's signature and that its subject is ``root_digest_hex``; return the statement."""
    try:
        payload = base64.b64decode(envelope["payload"], validate=True)
        sigs = [base64.b64decode(s["sig"], validate=True) for s in envelope["signatures"]]
        ptype = str(envelope["payloadType"])
    except (KeyError, TypeError, ValueError) as exc:
        raise VerificationFailed(f"provenance envelope is malformed ({exc})",
                                 hint="re-sign the model (mlctl model sign NAME:V)") from None
    if ptype != PAYLOAD_TYPE or not any(verify_signature(public_key_pem, pae(ptype, payload), s) for s in sigs):
        raise VerificationFailed("provenance signature does not verify with the model's signing key",
                                 hint="the provenance was altered or signed by another key; re-sign the model")
    stmt: dict[str, Any] = json.loads(payload)
    digests = [s.get("digest", {}).get("sha256") for s in stmt.get("subject", [])]
    if root_digest_hex not in digests:
        raise VerificationFailed("provenance is about other bytes: its subject is not this model's root digest",
                                 hint="re-sign the model (mlctl model sign NAME:V)")
    return stmt
