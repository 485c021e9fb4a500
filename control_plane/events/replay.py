"""Re-deliver dead-lettered events once their sink is back; what fails again is dead-lettered again.

The dead-letter file is first renamed aside under the dead-letter lock (a moment), so emitters keep
appending to a fresh file while the replay delivers, and nothing is lost or delivered twice by two
replays at once.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from control_plane.events import append_dead_letter, dead_letter_lock, dead_letter_path
from control_plane.events.config import load_sinks
from control_plane.events.delivery import deliver


@dataclass(frozen=True)
class ReplayResult:
    delivered: int
    still_failing: int
    unknown_sink: int


def replay() -> ReplayResult:

    path = dead_letter_path()
    taken = path.with_name(f"dead-letter.replaying-{os.getpid()}.jsonl")
    with dead_letter_lock():
        if not path.exists():
            return ReplayResult(0, 0, 0)
        path.replace(taken)
    sinks = {s.name: s for s in load_sinks()}
    delivered = failing = unknown = 0
    for line in taken.read_text().splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn line from a crash mid-write: nothing to deliver
        sink = sinks.get(str(rec.get("sink")))
        if sink is None:
            unknown += 1
            append_dead_letter(rec)
            continue
        result = deliver(sink, rec["event"])
        if result.ok:
            delivered += 1
        else:
            failing += 1
            append_dead_letter(
                {**rec, "attempts": int(rec.get("attempts", 0)) + result.attempts, "error": result.error}
            )
    taken.unlink()
    return ReplayResult(delivered, failing, unknown)
