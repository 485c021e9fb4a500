"""Filters shared by the operations views (releases, approvals, audit entries, model versions).

``--model NAME``, ``--actor ID`` and ``--since WHEN`` mean the same on every list: WHEN is a
duration back from now (``30m``, ``6h``, ``7d``) or an ISO-8601 date/time (UTC unless it says
otherwise). Stored timestamps are ISO-8601 UTC strings, so a cutoff compares as text on SQLite
and PostgreSQL alike.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from control_plane.errors import UsageError

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def since_cutoff(since: str | None) -> str | None:
    """``--since`` as an ISO-8601 UTC string (``...Z``) to compare stored timestamps against."""
    if not since:
        return None
    m = _DURATION.match(since.strip())
    if m:
        dt = datetime.now(UTC) - timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])
    else:
        try:
            dt = datetime.fromisoformat(since.strip().replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(f"--since {since!r} is neither a duration nor a date",
                             hint="e.g. --since 6h, --since 7d or --since 2026-11-30T08:00:00Z") from None
        dt = dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
