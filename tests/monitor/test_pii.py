"""The PII matrix: each identifier kind, valid and invalid check digits, tagged and untagged data;
and no value the scanner finds ever appears in output, logs, events or the audit trail."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest

from control_plane.errors import PolicyViolation
from control_plane.pii import guard, kinds_in, luhn_ok, redact, refuse_unless_classified, scan_path
from tests.cli_runner import run_mlctl


def luhn_complete(body: str) -> str:
    """``body`` + the Luhn check digit that makes it valid."""
    for d in "0123456789":
        if luhn_ok(body + d):
            return body + d
    raise AssertionError("unreachable")


def wrong_check(valid: str) -> str:
    last = valid[-1]
    return valid[:-1] + str((int(last) + 1) % 10)


def uae_iban(bank: str, account: str) -> str:
    bban = bank + account
    numeric = "".join(str(int(c, 36)) for c in bban + "AE00")
    check = 98 - int(numeric) % 97
    return f"AE{check:02d}{bban}"


EID = luhn_complete("78419901234567")  # 784-1990-1234567-?
IBAN = uae_iban("033", "1234567890123456")
CARD_VISA = "4111111111111111"
CARD_MC = luhn_complete("555555555555444")

VALID = {
    "emirates_id": [
        f"{EID[:3]}-{EID[3:7]}-{EID[7:14]}-{EID[14]}",
        EID,
        f"{EID[:3]} {EID[3:7]} {EID[7:14]} {EID[14]}",
    ],
    "phone_ae": [
        "+971 50 123 4567",
        "+971-4-123-4567",
        "00971501234567",
        "+971501234567",
        "050-123-4567",
        "04 123 4567",
        "+971 2 612 3456",
    ],
    "email": ["fatima.alhashimi@example.ae", "ops+alerts@bank.co.ae"],
    "iban_ae": [IBAN, " ".join(IBAN[i : i + 4] for i in range(0, len(IBAN), 4))],
    "card": [CARD_VISA, "4111 1111 1111 1111", "5555-5555-5555-4444", CARD_MC],
}
INVALID = {
    "emirates_id": [wrong_check(EID), f"784-1990-1234567-{wrong_check(EID)[-1]}", "784-1234-123456-1"],
    "phone_ae": ["+971 1 234 5678", "+971 50 123 456", "+44 20 7946 0958", "+9715012345678"],
    "email": ["not-an-email@", "someone@localhost", "@example.ae"],
    "iban_ae": [
        IBAN[:2] + f"{(int(IBAN[2:4]) + 1) % 100:02d}" + IBAN[4:],
        IBAN[:-1] + str((int(IBAN[-1]) + 1) % 10),
        "AE07033123456789012345",
    ],  # last one: 20 digits after the check digits
    "card": [wrong_check(CARD_VISA), "1234 5678 9012 3456", "4111 1111 1111"],
}
ALL_VALUES = [v for vs in VALID.values() for v in vs]


@pytest.mark.parametrize(("kind", "value"), [(k, v) for k, vs in VALID.items() for v in vs])
def test_valid_identifier_is_found_as_its_kind(kind: str, value: str) -> None:
    assert kinds_in(f"customer note: {value} (verified)") == {kind}


@pytest.mark.parametrize(("kind", "value"), [(k, v) for k, vs in INVALID.items() for v in vs])
def test_invalid_check_digit_or_shape_is_not_reported(kind: str, value: str) -> None:
    assert kind not in kinds_in(f"customer note: {value} (verified)")


def test_plain_numbers_and_feature_values_are_not_pii() -> None:
    text = "0.4123456 12345 2026-11-27 3.1415926535 id=10293847 amount=1500000.25 784"
    assert kinds_in(text) == set()


def test_redact_keeps_text_and_drops_values() -> None:
    out = redact(f"call {VALID['phone_ae'][0]} or mail {VALID['email'][0]} re card {CARD_VISA}")
    assert out == "call [redacted:phone_ae] or mail [redacted:email] re card [redacted:card]"


def _pii_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "amount": [10.5, 99.0, 12.25],
            "customer_email": ["a.b@example.ae", "", "c.d@example.com"],
            "national_id": ["", VALID["emirates_id"][0], ""],
            "notes": ["", "", f"iban {IBAN}"],
        }
    )


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl", "json", "txt"])
def test_scan_formats_report_kind_and_place(tmp_path: Path, fmt: str) -> None:
    frame = _pii_frame()
    path = tmp_path / f"sample.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "parquet":
        frame.to_parquet(path)
    elif fmt == "jsonl":
        frame.to_json(path, orient="records", lines=True)
    elif fmt == "json":
        path.write_text(json.dumps({"inputs": frame.to_dict(orient="records")}))
    else:
        path.write_text("\n".join(" ".join(map(str, r)) for r in frame.itertuples(index=False)))
    findings = scan_path(path)
    kinds = sorted(f.kind for f in findings)
    assert kinds == ["email", "email", "emirates_id", "iban_ae"]
    eid = next(f for f in findings if f.kind == "emirates_id")
    assert eid.row is not None and eid.file == str(path)
    if fmt in ("csv", "parquet"):
        assert (eid.row, eid.column) == (2, "national_id")
    if fmt == "jsonl":
        assert (eid.row, eid.column) == (2, "national_id")
    for f in findings:  # a finding carries no value
        assert not any(
            v in json.dumps(f.to_dict()) for v in [*ALL_VALUES, "a.b@example.ae", "c.d@example.com"]
        )


def test_guard_matrix_tagged_and_untagged(tmp_path: Path) -> None:
    pii_file = tmp_path / "features.csv"
    _pii_frame().to_csv(pii_file, index=False)
    clean_file = tmp_path / "clean.csv"
    pd.DataFrame({"amount": [1.0, 2.0], "channel": ["web", "branch"]}).to_csv(clean_file, index=False)

    # untagged or tagged anything but pii: refused, naming kinds and places
    for tag in (None, "internal", "confidential", "public"):
        with pytest.raises(PolicyViolation) as err:
            guard(pii_file, tag)
        assert "emirates_id" in err.value.message and "national_id" in err.value.message
        assert "--classification pii" in (err.value.hint or "")
    # tagged pii: allowed, findings still returned
    assert len(guard(pii_file, "pii")) == 4
    assert len(guard(pii_file, "PII")) == 4
    # clean data needs no tag
    assert guard(clean_file, None) == []
    refuse_unless_classified([], None)


def test_no_found_value_in_logs_events_or_audit(
    tmp_path: Path, mlctl_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from control_plane import audit
    from control_plane.events import emit

    frame = pd.DataFrame({"raw": ALL_VALUES})
    path = tmp_path / "inputs.csv"
    frame.to_csv(path, index=False)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(PolicyViolation) as err:
        guard(path, "internal")
    message = str(err.value)
    guard(path, "pii")
    # an event whose author forgot the rule: values are redacted before they are written or sent
    emit(
        "model.registered",
        "fraud:3",
        {"note": f"sample from {VALID['email'][0]} {VALID['phone_ae'][0]}", "sample": ALL_VALUES},
    )
    cli = run_mlctl("pii", "scan", str(path), "-o", "json", "--classification", "internal", timeout=120)
    assert cli.returncode == 4, cli.stderr
    scanned = json.loads(cli.stdout)
    assert scanned["counts"] == {k: len(v) for k, v in sorted(VALID.items())}

    audit_text = json.dumps([e.as_dict() for e in audit.entries()])
    assert "pii.guard" in audit_text
    haystacks = {
        "exception": message,
        "logs": caplog.text,
        "cli stdout": cli.stdout,
        "cli stderr": cli.stderr,
        "audit": audit_text,
    }
    for f in mlctl_home.rglob("*"):
        if f.is_file() and f.suffix in (".jsonl", ".log", ".json"):
            haystacks[str(f)] = f.read_text(errors="replace")
    assert any("events.jsonl" in k for k in haystacks)
    for where, text in haystacks.items():
        for value in ALL_VALUES:
            assert value not in text, f"a {value[:3]}... value leaked into {where}"


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    cli = run_mlctl("pii", "scan", str(tmp_path / "nope.csv"), timeout=120)
    assert cli.returncode == 6
    assert "does not exist" in cli.stderr and "Traceback" not in cli.stderr


def test_digests_and_ids_in_events_are_left_alone() -> None:
    # a sha256 whose digit runs would pass Luhn if read on their own, a UUID, a timestamp
    digest = "sha256:ab" + CARD_VISA + "cd" + "0" * 46
    text = f"{digest} af4f9585-5a10-4ec0-96f5-fb69f98264f7 2026-11-27T10:36:42.285563Z release-0501234567x"
    assert kinds_in(text) == set()
    assert redact(text) == text


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(
    body=st.text(alphabet="0123456789", min_size=11, max_size=11),
    pos=st.integers(0, 14),
    delta=st.integers(1, 9),
)
def test_any_valid_emirates_id_is_found_and_any_single_digit_typo_is_not(
    body: str, pos: int, delta: int
) -> None:
    eid = luhn_complete("7841990" + body[:7])  # 784 + a plausible year + 7 digits + check digit
    assert kinds_in(f"id {eid[:3]}-{eid[3:7]}-{eid[7:14]}-{eid[14]}") == {"emirates_id"}
    if pos >= 3:  # keep the 784 prefix: a typo there makes it not look like an Emirates ID at all
        typo = eid[:pos] + str((int(eid[pos]) + delta) % 10) + eid[pos + 1 :]
        assert "emirates_id" not in kinds_in(f"id {typo}")


@settings(max_examples=200, deadline=None)
@given(
    bank=st.text(alphabet="0123456789", min_size=3, max_size=3),
    account=st.text(alphabet="0123456789", min_size=16, max_size=16),
    pos=st.integers(4, 22),
    delta=st.integers(1, 9),
)
def test_any_valid_uae_iban_is_found_and_any_single_digit_typo_is_not(
    bank: str, account: str, pos: int, delta: int
) -> None:
    iban = uae_iban(bank, account)
    assert kinds_in(f"pay to {iban}") == {"iban_ae"}
    typo = iban[:pos] + str((int(iban[pos]) + delta) % 10) + iban[pos + 1 :]
    assert "iban_ae" not in kinds_in(f"pay to {typo}")
