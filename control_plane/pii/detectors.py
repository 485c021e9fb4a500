"""Detectors for UAE-relevant personal identifiers: a regex finds a candidate, a checksum confirms it.

Kinds (stable names, used in findings, events and audit entries):

- ``emirates_id``: ``784-YYYY-NNNNNNN-N`` (dashes, spaces or none); the last digit is a Luhn check
  digit over the 15 digits, and YYYY is a plausible birth year (1900-2099).
- ``phone_ae``: +971 / 00971 / national 0 prefix, mobile (5x) or landline (2,3,4,6,7,9 area codes),
  with or without spaces and dashes.
- ``email``: an address with a dotted domain.
- ``iban_ae``: ``AE`` + 2 check digits + 19 digits (3 bank + 16 account), spaces allowed in groups,
  ISO 13616 mod-97 check must equal 1.
- ``card``: 13-19 digits (spaces/dashes allowed) starting with a card-network digit (2-6) and passing Luhn.

Identifiers glued to letters or digits (inside a hex digest, a UUID, an account key) are not
matched: events carry digests, and a "card number" inside a sha256 must not be redacted.

A candidate whose check digit is wrong is *not* reported: a wrong check digit is what separates an
identifier from a number that only has its shape. Detectors return kinds and offsets, never values.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

KINDS = ("emirates_id", "phone_ae", "email", "iban_ae", "card")


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def iban_ok(iban: str) -> bool:
    """ISO 13616: move the first four characters to the end, letters to 10..35, the number mod 97 is 1."""
    s = iban[4:] + iban[:4]
    digits = "".join(str(int(c, 36)) for c in s)
    return int(digits) % 97 == 1


def _digits(s: str) -> str:
    return re.sub(r"\D", "", s)


def _emirates_id_ok(m: re.Match[str]) -> bool:
    year = int(m.group("year"))
    return 1900 <= year <= 2099 and luhn_ok(_digits(m.group(0)))


def _iban_ok(m: re.Match[str]) -> bool:
    return iban_ok(re.sub(r"\s", "", m.group(0)).upper())


def _card_ok(m: re.Match[str]) -> bool:
    digits = _digits(m.group(0))
    return 13 <= len(digits) <= 19 and luhn_ok(digits)


@dataclass(frozen=True)
class Detector:
    kind: str
    pattern: re.Pattern[str]
    validate: Callable[[re.Match[str]], bool] | None = None


_SEP = r"[ -]?"
DETECTORS: tuple[Detector, ...] = (
    Detector(
        "emirates_id",
        re.compile(rf"(?<![\dA-Za-z])784{_SEP}(?P<year>\d{{4}}){_SEP}\d{{7}}{_SEP}\d(?![\dA-Za-z])"),
        _emirates_id_ok,
    ),
    Detector(
        "iban_ae",
        re.compile(r"(?<![A-Za-z0-9])AE\d{2}(?: ?\d){19}(?![\dA-Za-z])", re.IGNORECASE),
        _iban_ok,
    ),
    Detector(
        "card",
        # A card starts with a network digit (2 Mastercard 2-series, 3 Amex/Diners/JCB, 4 Visa,
        # 5 Mastercard, 6 Discover/UnionPay) and is written as it is printed: 13-19 digits in one
        # run, groups of four with one separator, or Amex 4-6-5. Not after a decimal point.
        re.compile(
            r"(?<![\dA-Za-z+.,])[2-6](?:\d{12,18}|\d{3}([ -])\d{4}\1\d{4}\1\d{1,7}|\d{3}([ -])\d{6}\2\d{5})(?![\dA-Za-z])"
        ),
        _card_ok,
    ),
    Detector(
        "phone_ae",
        re.compile(
            r"(?<![\dA-Za-z+])(?:(?:\+|00)971[ -]?\(?0?\)?|0)"
            r"(?:5[024568]|[234679])[ -]?\d{3}[ -]?\d{4}(?![\dA-Za-z])"
        ),
    ),
    Detector(
        "email",
        re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])"),
    ),
)

# One cheap test that rules out most cells before the per-kind regexes run.
PREFILTER = re.compile(r"@|\d{7}|\d[ -]\d|AE\d", re.IGNORECASE)


def find_kinds(text: str) -> Iterator[tuple[str, int, int]]:
    """Yield (kind, start, end) for each confirmed identifier in ``text``; spans never overlap.

    Checked in order emirates_id, iban_ae, card, phone_ae, email: a span claimed by an earlier kind
    is not reported again as a later one (an Emirates ID is 15 Luhn-valid digits, for instance).
    """
    if not PREFILTER.search(text):
        return
    taken: list[tuple[int, int]] = []
    for det in DETECTORS:
        for m in det.pattern.finditer(text):
            start, end = m.span()
            if any(start < e and s < end for s, e in taken):
                continue
            if det.validate is None or det.validate(m):
                taken.append((start, end))
                yield det.kind, start, end


def kinds_in(text: str) -> set[str]:
    return {kind for kind, _, _ in find_kinds(text)}


def redact(text: str) -> str:
    """``text`` with every identifier replaced by ``[redacted:<kind>]``."""
    spans = sorted(find_kinds(text), key=lambda t: t[1])
    if not spans:
        return text
    out: list[str] = []
    pos = 0
    for kind, start, end in spans:
        out.append(text[pos:start])
        out.append(f"[redacted:{kind}]")
        pos = end
    out.append(text[pos:])
    return "".join(out)
