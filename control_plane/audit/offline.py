"""Offline verification, as an auditor does it: an export, the signed heads copied from the audit
bucket, and the public key — nothing from the host's database or ``$MLCTL_HOME``.

Every line's leaf hash is recomputed from its fields, sequence numbers must run without gaps, every
head must carry a valid signature by one of the given keys and match the Merkle root of the first
``size`` leaves, and no head may be larger than the export.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from control_plane.audit import heads, merkle
from control_plane.audit.entry import HASHED_FIELDS, canonical_json
from control_plane.audit.trail import AuditReport
from control_plane.errors import MlctlError
from control_plane.signing.keys import key_fingerprint, load_p256_public_key


def load_heads(paths: Sequence[Path]) -> list[heads.SignedHead]:
    """Heads from files (one JSON head, or JSON lines) and directories (every ``*.json``/``*.jsonl`` below)."""
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files.extend(sorted(f for f in p.rglob("*") if f.suffix in (".json", ".jsonl") and f.is_file()))
        elif p.exists():
            files.append(p)
        else:
            raise MlctlError(f"{p} does not exist", hint="pass the heads copied from the audit bucket "
                             "(aws s3 cp --recursive s3://<log bucket>/audit-heads/<log>/ heads/)")
    out = []
    for f in files:
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    out.append(heads.SignedHead.from_json(line))
                except (ValueError, KeyError, TypeError) as exc:
                    raise MlctlError(f"{f}:{n} is not a signed tree head: {exc}",
                                     hint="pass only heads written by mlctl") from None
    return out


def verify_export(export: Path, head_paths: Sequence[Path], public_keys: Sequence[Path]) -> AuditReport:
    pems = {}
    for k in public_keys:
        pem = k.read_bytes()
        load_p256_public_key(pem)
        pems[key_fingerprint(pem)] = pem
    keyring = heads.Keyring(pems, "the given public key(s)")
    report = AuditReport(ok=True, entries=0)
    by_size: dict[int, list[heads.SignedHead]] = {}
    logs = set()
    for h in load_heads(head_paths):
        if not keyring.verifies(h):
            report.problems.append(f"the head #{h.size} ({h.ts}) does not verify with {keyring.source}")
            continue
        by_size.setdefault(h.size, []).append(h)
        logs.add(h.log)
    if len(logs) > 1:
        report.problems.append(f"the heads belong to several logs ({', '.join(sorted(logs))}): pass one log's heads")
    tree = merkle.CompactRange()
    covered = 0
    with export.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            try:
                e = json.loads(line)
                body = canonical_json({k: e[k] for k in HASHED_FIELDS}).encode()
            except (ValueError, KeyError, TypeError) as exc:
                report.problems.append(f"{export}:{n}: not an audit entry ({exc})")
                report.first_bad = n
                break
            report.entries += 1
            if e["seq"] != n:
                report.problems.append(f"entry #{n} is missing: line {n} holds entry #{e['seq']}")
                report.first_bad = n
                break
            leaf = hashlib.sha256(b"\x00" + body).digest()
            if leaf.hex() != e.get("leaf_hash"):
                report.problems.append(f"entry #{n}: content does not match its hash (edited after it was recorded)")
                report.first_bad = n
                break
            tree.append(leaf)
            for h in by_size.get(n, []):
                if h.root != tree.root().hex():
                    report.problems.append(f"entries #{covered + 1}..#{n}: the tree root differs from the signed "
                                           f"head #{n} ({h.ts})")
                    report.first_bad = covered + 1
                    break
                covered = n
                report.heads_checked += 1
                report.checkpoint = {**h.payload(), "source": "given heads"}
            if report.first_bad:
                break
    if report.first_bad is None:
        beyond = [s for s in by_size if s > report.entries]
        if beyond:
            report.problems.append(f"entry #{report.entries + 1}..#{max(beyond)} is missing: a signed head covers "
                                   f"{max(beyond)} entries but the export ends at #{report.entries}")
            report.first_bad = report.entries + 1
        elif not by_size:
            report.problems.append("no head verifies with the given key(s): nothing vouches for the export")
        elif covered < report.entries:
            report.notes.append(f"entries #{covered + 1}..#{report.entries} are not covered by a given signed head")
    report.ok = not report.problems
    return report
