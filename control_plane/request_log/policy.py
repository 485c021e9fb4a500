"""What the live request log may keep (UAE PDPL: data minimisation and storage limitation).

The request log exists for one purpose, drift detection, so it keeps only what drift needs:

- **features as configured**: ``features:`` lists the input fields (or V2 tensor names) kept;
  everything else in a request is never written. Without the list, every input is kept.
- **PII-tagged fields** (``pii:``) are dropped, or replaced by a keyed hash (``pii_action: hash``,
  HMAC-SHA256 with a per-home secret: equal values stay comparable for drift, the value cannot be
  recovered or guessed by hashing candidates without the secret).
- **any other string value** in which the PII detectors find an identifier (Emirates ID, +971
  phone, e-mail, AE IBAN, card number) is redacted to ``[redacted:<kind>]``, tagged or not.
- **retention**: lines older than ``retention_days`` (default 30) are deleted, and at most
  ``max_lines`` (default 100,000) newest lines are kept.

Configuration: ``$MLCTL_HOME/request-log.yaml`` (or the file ``MLCTL_REQUEST_LOG_POLICY`` names)::

    retention_days: 30
    max_lines: 100000
    services:
      fraud:
        features: [amount, merchant_category]
        pii: [customer_email, emirates_id]
        pii_action: drop          # or hash
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from control_plane.errors import UsageError
from control_plane.pii.detectors import redact
from control_plane.settings import current as settings
from control_plane.settings import mlctl_home

DEFAULT_RETENTION_DAYS = 30.0
DEFAULT_MAX_LINES = 100_000


@dataclass(frozen=True)
class LogPolicy:
    features: frozenset[str] | None = None  # None: keep every input field
    pii: frozenset[str] = field(default_factory=frozenset)
    pii_action: str = "drop"  # drop | hash
    retention_days: float = DEFAULT_RETENTION_DAYS
    max_lines: int = DEFAULT_MAX_LINES
    secret: bytes = b""

    def as_dict(self) -> dict[str, Any]:
        return {"features": sorted(self.features) if self.features is not None else None,
                "pii": sorted(self.pii), "pii_action": self.pii_action,
                "retention_days": self.retention_days, "max_lines": self.max_lines}


def policy_file() -> Path:
    return settings().request_log_policy or mlctl_home() / "request-log.yaml"


def _secret() -> bytes:
    path = mlctl_home() / "keys" / "request-log.secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(32))
    return path.read_bytes()


def load_policy(service: str, path: Path | None = None) -> LogPolicy:
    path = path or policy_file()
    raw: Any = {}
    if path.exists():
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise UsageError(f"{path}: not valid YAML ({exc})", hint="see control_plane/monitor/log_policy.py") from None
    if not isinstance(raw, dict):
        raise UsageError(f"{path}: expected a mapping", hint="keys: retention_days, max_lines, services")
    svc = (raw.get("services") or {}).get(service) or {}
    if not isinstance(svc, dict):
        raise UsageError(f"{path}: services.{service}: expected a mapping", hint="keys: features, pii, pii_action")
    action = str(svc.get("pii_action", "drop"))
    if action not in ("drop", "hash"):
        raise UsageError(f"{path}: services.{service}.pii_action: {action!r}", hint="use drop or hash")
    features = svc.get("features")
    try:
        return LogPolicy(
            features=frozenset(map(str, features)) if features is not None else None,
            pii=frozenset(map(str, svc.get("pii") or [])),
            pii_action=action,
            retention_days=float(raw.get("retention_days", DEFAULT_RETENTION_DAYS)),
            max_lines=int(raw.get("max_lines", DEFAULT_MAX_LINES)),
            secret=_secret() if action == "hash" else b"",
        )
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{path}: {exc}", hint="retention_days and max_lines are numbers") from None


def _hash(policy: LogPolicy, value: Any) -> str:
    digest = hmac.new(policy.secret, repr(value).encode(), hashlib.sha256).hexdigest()
    return f"hmac-sha256:{digest[:32]}"


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    return value


def _field(policy: LogPolicy, name: str, value: Any) -> tuple[bool, Any]:
    """(keep?, value to write) for one input field or tensor."""
    if name in policy.pii:
        return (False, None) if policy.pii_action == "drop" else (True, _hash(policy, value))
    if policy.features is not None and name not in policy.features:
        return False, None
    return True, _scrub(value)


def minimise_inputs(policy: LogPolicy, inputs: Any) -> Any:
    """The inputs as the log may keep them (rows of named fields, or V2 tensors by name)."""
    if isinstance(inputs, dict):
        out: dict[str, Any] = {}
        for k, v in inputs.items():
            keep, value = _field(policy, str(k), v)
            if keep:
                out[k] = value
        return out
    if isinstance(inputs, list):
        if all(isinstance(t, dict) and "name" in t and "data" in t for t in inputs):
            # A PII-tagged tensor is dropped whatever pii_action says: a hash of a whole tensor
            # tells drift nothing, and the reader expects numbers in a tensor's data.
            return [{**t, "data": _scrub(t["data"])} for t in inputs
                    if str(t["name"]) not in policy.pii
                    and (policy.features is None or str(t["name"]) in policy.features)]
        return [minimise_inputs(policy, row) for row in inputs]
    return _scrub(inputs)
