"""Analysis windows: a stretch of real traffic the candidate is judged on, surviving a crash.

A window's start (and the metrics at its start) is persisted in the release's ``baseline`` before
any wait, so ``resume`` re-enters the same window rather than starting a new one. A person's
``promote`` or ``abort`` ends the wait early. The verdict then decides: ``fail`` raises
``StepFailed`` (the release rolls back), ``inconclusive`` pauses the release for a person unless
they already said promote, ``pass`` closes the window. Canary steps and post-promotion analysis
use :func:`run`; the shadow strategy uses the same pieces (:func:`open_window`, :func:`wait`,
:func:`pause`, :func:`close`) around its own comparison.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from control_plane.release import analysis, record, repository
from control_plane.release.states import Paused, StepFailed
from control_plane.store import session_scope

if TYPE_CHECKING:
    from control_plane.release.engine import Engine
    from control_plane.release.models import ReleaseRow


def open_window(release_id: str, name: str, start: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The open window ``name`` of the release, or a new one (``{"name", "t", **start()}``)."""
    with session_scope() as s:
        cur = repository.load(s, release_id)
        base = repository.baseline_of(cur)
        if base is None or base.get("name") != name:
            base = {"name": name, "t": time.time(), **start()}
            repository.set_baseline(cur, base)
    return base


def wait(eng: Engine, release_id: str, name: str, end: float) -> None:
    """Sleep until ``end`` (epoch seconds), a person's promote or abort, ticking the hooks."""
    while time.time() < end:
        if repository.requested(release_id) in ("abort", "promote"):
            break
        eng.hooks.window_tick(release_id, name, end - time.time())
        time.sleep(min(eng.poll, max(0.0, end - time.time())))


def pause(row: ReleaseRow, name: str, reasons: list[str], entry: dict[str, Any]) -> NoReturn:
    """Pause the release for a person (an inconclusive verdict), audited and announced."""
    with session_scope() as s:
        cur = repository.load(s, row.id)
        cur.paused = f"{name} inconclusive: {'; '.join(reasons)}"
        record.audit(s, "release.paused", cur.service, row.id, reasons=reasons, details={"analysis": name})
    record.emit("release.paused", row.service, {"release": row.id, "analysis": entry})
    raise Paused()


def close(release_id: str) -> None:
    """The window passed: forget it, and the promote that may have ended it."""
    with session_scope() as s:
        cur = repository.load(s, release_id)
        cur.baseline, cur.paused = None, None
        if cur.requested == "promote":
            cur.requested = None


def run(eng: Engine, row: ReleaseRow, seconds: float, name: str, thresholds: analysis.Thresholds) -> dict[str, Any]:
    """Analyse the candidate over ``seconds`` of real traffic; returns the analysis entry."""
    source = eng.driver.metrics_source(row.service, row.colour)
    base = open_window(row.id, name, lambda: {"metrics": analysis.begin(source)})
    wait(eng, row.id, name, base["t"] + seconds)
    result = analysis.evaluate(name, analysis.measure(source, base["metrics"]), thresholds)
    promote = repository.requested(row.id) == "promote"
    repository.record_analysis(row.id, result.to_dict())
    if result.verdict == "fail":
        raise StepFailed(name, result.reasons)
    if result.verdict == "inconclusive" and not promote:
        pause(row, name, result.reasons, result.to_dict())
    close(row.id)
    return result.to_dict()
