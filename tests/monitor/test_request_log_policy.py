"""The live request log keeps only what drift needs (UAE PDPL minimisation and retention): the
real writer the model servers use, the real reader drift uses, and the PII detectors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from control_plane.monitor.request_log import RequestLogWriter, log_path, read_requests

EMAIL = "layla.haddad@example.ae"
EMIRATES_ID = "784-1990-1234567-0"
PHONE = "+971 50 123 4567"


def _policy(home: Path, text: str) -> None:
    (home / "request-log.yaml").write_text(text)


def test_pii_tagged_fields_never_reach_the_log_and_untagged_identifiers_are_redacted(mlctl_home: Path) -> None:
    _policy(mlctl_home, """
services:
  fraud:
    features: [amount, merchant, email, note]
    pii: [email]
    pii_action: drop
""")
    writer = RequestLogWriter("fraud", "fraud", "3")
    for i in range(30):
        writer.write([{"amount": 10.0 + i, "merchant": "m" + str(i % 3), "email": EMAIL,
                       "national_id": EMIRATES_ID, "note": f"call me on {PHONE}"}],
                     [{"prediction": i % 2}])
    text = log_path("fraud").read_text()
    assert EMAIL not in text and EMIRATES_ID not in text and PHONE not in text
    assert "national_id" not in text  # not a configured feature: never written
    assert "[redacted:phone_ae]" in text  # an identifier in an untagged field is redacted
    assert log_path("fraud").stat().st_mode & 0o777 == 0o600
    window = read_requests("fraud")
    assert sorted(window.frame.columns) == ["amount", "merchant", "note", "prediction"]
    assert len(window.frame) == 30


def test_hashed_pii_stays_comparable_without_the_value(mlctl_home: Path) -> None:
    _policy(mlctl_home, "services:\n  fraud:\n    pii: [email]\n    pii_action: hash\n")
    writer = RequestLogWriter("fraud", "fraud", "3")
    writer.write([{"amount": 1.0, "email": EMAIL}], [{"prediction": 1}])
    writer.write([{"amount": 2.0, "email": EMAIL}], [{"prediction": 0}])
    rows = [json.loads(line) for line in log_path("fraud").read_text().splitlines()]
    hashes = [r["inputs"][0]["email"] for r in rows]
    assert EMAIL not in log_path("fraud").read_text()
    assert hashes[0] == hashes[1] and hashes[0].startswith("hmac-sha256:")
    assert (mlctl_home / "keys" / "request-log.secret").stat().st_mode & 0o777 == 0o600


def test_pii_tagged_tensors_are_dropped(mlctl_home: Path) -> None:
    _policy(mlctl_home, "services:\n  digits:\n    pii: [face]\n")
    writer = RequestLogWriter("digits", "digits", "1")
    writer.write([{"name": "input", "shape": [1, 2], "datatype": "FP32", "data": [0.1, 0.2]},
                  {"name": "face", "shape": [1, 2], "datatype": "FP32", "data": [0.9, 0.8]}],
                 [{"name": "probabilities", "shape": [1, 2], "datatype": "FP32", "data": [0.3, 0.7]}])
    window = read_requests("digits")
    assert sorted(window.frame.columns) == ["input_0", "input_1", "prediction"]


def test_retention_by_age_and_by_line_count(mlctl_home: Path) -> None:
    _policy(mlctl_home, "retention_days: 7\nmax_lines: 50\n")
    path = log_path("svc")
    path.parent.mkdir(parents=True)
    old = (datetime.now(UTC) - timedelta(days=8)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    path.write_text("".join(json.dumps({"ts": old, "inputs": {"a": i}, "outputs": {"prediction": 0}}) + "\n"
                            for i in range(20)))
    writer = RequestLogWriter("svc", "m", "1", prune_every=10)
    assert path.read_text() == ""  # everything older than 7 days went at start
    for i in range(80):
        writer.write({"a": float(i)}, {"prediction": 0})
    lines = path.read_text().splitlines()
    assert 50 <= len(lines) < 60  # pruned to 50 every 10 writes
    assert json.loads(lines[-1])["inputs"]["a"] == 79.0


def test_a_bad_policy_is_a_usage_error(mlctl_home: Path) -> None:
    from control_plane.errors import UsageError

    _policy(mlctl_home, "services:\n  svc:\n    pii_action: shred\n")
    with pytest.raises(UsageError, match="pii_action"):
        RequestLogWriter("svc", "m", "1")
