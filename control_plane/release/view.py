"""The status view of a release (what ``mlctl release status`` prints and returns as JSON)."""

from __future__ import annotations

import json
from typing import Any

from control_plane.drivers.base import Driver
from control_plane.release import engine
from control_plane.release.models import ReleaseRow


def describe(row: ReleaseRow, driver: Driver | None = None) -> dict[str, Any]:
    weights: dict[str, int] | None = None
    if driver is not None:
        try:
            weights = driver.traffic(row.service)
        except Exception:  # status must show what it can even if the runtime is down
            weights = None
    lv = engine.live(row.service)
    return {
        "release": row.id,
        "service": row.service,
        "model": f"{row.model_name}:{row.model_version}",
        "digest": row.digest,
        "environment": row.environment,
        "strategy": row.strategy,
        "state": row.state,
        "in_progress": row.target,
        "step": row.step,
        "colour": row.colour,
        "previous": {"colour": row.previous_colour, "version": row.previous_version},
        "paused": row.paused,
        "weights": weights,
        "live": None
        if lv is None
        else {
            "colour": lv.live_colour,
            "version": lv.live_version,
            "release": lv.live_release_id,
            "previous_colour": lv.previous_colour,
            "previous_version": lv.previous_version,
        },
        "analysis": json.loads(row.analysis),
        "reasons": json.loads(row.reasons),
        "transitions": [
            {"from": t.from_state, "to": t.to_state, "phase": t.phase, "at": t.at}
            for t in engine.transitions(row.id)
        ],
        "created_by": row.created_by,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }
