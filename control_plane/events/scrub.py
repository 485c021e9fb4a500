"""Keep secrets and personal data out of events: they travel to third-party webhooks.

Callers are told not to put such values in events; this is the safety net for when one does.
"""

from __future__ import annotations

import re
from typing import Any

from control_plane.pii.detectors import redact

# Keys whose values are credentials wherever they appear.
_SECRET_KEY = re.compile(
    r"(pass(word|wd)?|secret|token|api[_-]?key|private[_-]?key|credential|authorization)", re.IGNORECASE
)
REDACTED = "[redacted:secret]"


def scrub(value: Any, key: str | None = None) -> Any:
    if key is not None and _SECRET_KEY.search(key):
        return REDACTED
    if isinstance(value, dict):
        return {str(k): scrub(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return redact(value)
    return value
