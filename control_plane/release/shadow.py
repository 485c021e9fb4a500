"""The shadow strategy: the candidate answers a copy of production's requests, nobody sees it.

``PRE_ANALYSIS_PASSED → SHADOW → (SWITCHED → POST_ANALYSIS_PASSED → DONE | SHADOW_DONE)``

``SHADOW`` turns on the driver's mirror (``P`` % of production requests copied to the candidate;
the gateway discards the copies' answers), waits ``shadow_window`` seconds, then compares the
candidate with production *on the same requests*, joined by the request id the gateway gives
every request and both model servers log:

- error rate (5xx) of the candidate's copies (fails above ``thresholds.max_error_rate`` when
  production did better on the same requests);
- latency: p95 of the candidate against production's on the same requests (fails above
  ``max_latency_ratio`` × production's, when the difference is also above ``latency_floor_seconds``:
  a millisecond of noise is not a regression) and against ``thresholds.max_p95_seconds``;
- output agreement: argmax agreement for classifiers (an output row with several columns),
  relative difference within ``max_relative_difference`` for regressions; fails below
  ``min_agreement``.

Fewer than ``thresholds.min_requests`` joined pairs is *inconclusive*: the release pauses for a
person, like any analysis. The result is stored with the release's analysis and audited
(``release.shadow``). A failed comparison raises ``StepFailed``: the release rolls back (the
candidate is removed; production never changed) and its reasons carry the report. A passed one
ends the mirror and continues to a blue-green cutover (``then == "blue-green"``) or ends in
``SHADOW_DONE`` with the candidate removed.

Crash safety: the window's start is persisted in the release's ``baseline`` before any wait, and
every action here is idempotent (``set_mirror`` of what is in force is a no-op), so ``resume``
re-enters ``SHADOW`` and measures the same window.

Where the driver cannot return per-request records (a cluster, whose gateway mirrors but whose
answers we do not collect yet), error rate and latency come from each colour's metrics and
agreement is reported as not measured: inconclusive, so a person decides.

One module on purpose: the driver capabilities a shadow needs (``Mirroring``, ``RequestRecords``),
the comparison that judges it and the step that runs it are one concept, read together when a
shadow verdict is questioned; the thresholds live with the rest of the config
(``config.ShadowThresholds``, re-exported here) and the window mechanics in ``release.window``.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from control_plane.errors import Conflict, MlctlError
from control_plane.release import analysis, record, repository, window
from control_plane.release.config import OutputKind, ShadowThresholds
from control_plane.release.states import StepFailed
from control_plane.store import session_scope

if TYPE_CHECKING:
    from control_plane.drivers.base import Driver
    from control_plane.release.config import ReleaseConfig
    from control_plane.release.engine import Engine
    from control_plane.release.models import ReleaseRow

__all__ = [
    "WINDOW",
    "Mirroring",
    "OutputKind",
    "RequestRecords",
    "ShadowThresholds",
    "check_startable",
    "compare",
    "compare_metrics",
    "finish",
    "run",
    "stop_mirror",
    "summary",
]

WINDOW = "shadow"


@runtime_checkable
class Mirroring(Protocol):
    """What a driver offers for shadow releases (besides ``drivers.base.Driver``)."""

    def mirror_support(self) -> str | None:
        """None when the runtime can mirror, else why not (said to the user as is)."""
        ...

    def set_mirror(self, service: str, colour: str, percent: int) -> None: ...

    def clear_mirror(self, service: str) -> None: ...

    def mirror(self, service: str) -> dict[str, Any] | None: ...


@runtime_checkable
class RequestRecords(Protocol):
    """Per-request records (``request_id``, ``colour``, ``mirror``, ``code``, ``seconds``,
    ``outputs``) written at or after an epoch time: what the comparison joins."""

    def shadow_records(self, service: str, since: float) -> list[dict[str, Any]]: ...


# -- checks before anything is applied ----------------------------------------------------------
def check_startable(driver: Driver, service: str, live_colour: str | None) -> None:
    """Refuse a shadow release that cannot run, before it is created."""
    why = (
        driver.mirror_support()
        if isinstance(driver, Mirroring)
        else f"the {driver.name} runtime cannot mirror"
    )
    if why:
        raise MlctlError(
            f"shadow releases are not supported here: {why}",
            hint="use --strategy canary (or blue-green) on this runtime",
        )
    if live_colour is None:
        raise Conflict(
            f"{service} has no production version to shadow",
            hint="release a first version with --strategy blue-green, then shadow the next",
        )


def stop_mirror(driver: Driver, service: str) -> bool:
    """End any mirror of ``service`` (idempotent; rollbacks call it first)."""
    if isinstance(driver, Mirroring) and driver.mirror_support() is None and driver.mirror(service):
        driver.clear_mirror(service)
        return True
    return False


# -- the comparison (pure) ------------------------------------------------------------------------
def _matrix(outputs: list[dict[str, Any]] | None) -> np.ndarray | None:
    """The first output tensor as rows × columns."""
    if not outputs:
        return None
    t = outputs[0]
    data = np.asarray(t.get("data") or [], dtype=np.float64)
    shape = [int(s) for s in t.get("shape") or [data.size]]
    rows = shape[0] if shape else 1
    if data.size == 0 or rows <= 0 or data.size % rows:
        return None
    return data.reshape(rows, -1)


def _p95(values: list[float]) -> float | None:
    return float(np.percentile(values, 95)) if values else None


def compare(
    records: list[dict[str, Any]],
    *,
    production: str,
    candidate: str,
    thresholds: analysis.Thresholds,
    shadow: ShadowThresholds,
) -> dict[str, Any]:
    """Join production's answers and the candidate's mirrored answers by request id; judge them.

    Returns an analysis entry (the keys of ``analysis.AnalysisResult``) with the report under
    ``comparison``."""
    prod = {r["request_id"]: r for r in records if r.get("colour") == production and not r.get("mirror")}
    cand = {r["request_id"]: r for r in records if r.get("colour") == candidate and r.get("mirror")}
    pairs = [(prod[rid], cand[rid], rid) for rid in cand if rid in prod]
    cand_err = sum(1 for p, c, _ in pairs if int(c.get("code", 500)) >= 500)
    prod_err = sum(1 for p, c, _ in pairs if int(p.get("code", 500)) >= 500)
    n = len(pairs)
    cand_rate = cand_err / n if n else 0.0
    prod_rate = prod_err / n if n else 0.0
    cand_p95 = _p95([float(c["seconds"]) for p, c, _ in pairs if "seconds" in c])
    prod_p95 = _p95([float(p["seconds"]) for p, c, _ in pairs if "seconds" in p])

    rows = agree = 0
    kind: str | None = None if shadow.output == "auto" else shadow.output
    max_rel = 0.0
    disagreeing: list[str] = []
    for p, c, rid in pairs:
        if int(p.get("code", 0)) != 200 or int(c.get("code", 0)) != 200:
            continue
        a, b = _matrix(p.get("outputs")), _matrix(c.get("outputs"))
        if a is None or b is None:
            continue
        this_kind = kind or ("classifier" if a.shape[1] > 1 else "regression")
        kind = kind or this_kind
        if a.shape != b.shape:
            ok = np.zeros(a.shape[0], dtype=bool)  # a different output shape never agrees
        elif this_kind == "classifier":
            ok = a.argmax(axis=1) == b.argmax(axis=1)
        else:
            rel = np.abs(b - a) / np.maximum(np.abs(a), 1e-12)
            max_rel = max(max_rel, float(rel.max()))
            ok = (rel <= shadow.max_relative_difference).all(axis=1)
        rows += int(ok.size)
        agree += int(ok.sum())
        if not ok.all() and len(disagreeing) < 5:
            disagreeing.append(rid)
    agreement = agree / rows if rows else None

    reasons: list[str] = []
    verdict: analysis.Verdict = "pass"
    if n < thresholds.min_requests:
        verdict = "inconclusive"
        reasons.append(f"only {n} mirrored requests joined to production's (need {thresholds.min_requests})")
    else:
        if cand_rate > thresholds.max_error_rate and cand_rate > prod_rate:
            verdict = "fail"
            reasons.append(
                f"candidate error rate {cand_rate:.2%} > {thresholds.max_error_rate:.2%} "
                f"(production {prod_rate:.2%} on the same requests)"
            )
        if cand_p95 is not None and cand_p95 > thresholds.max_p95_seconds:
            verdict = "fail"
            reasons.append(
                f"candidate p95 latency {cand_p95 * 1000:.1f} ms > {thresholds.max_p95_seconds * 1000:.1f} ms"
            )
        if (
            cand_p95 is not None
            and prod_p95 is not None
            and cand_p95 > prod_p95 * shadow.max_latency_ratio
            and cand_p95 - prod_p95 > shadow.latency_floor_seconds
        ):
            verdict = "fail"
            reasons.append(
                f"candidate p95 latency {cand_p95 * 1000:.1f} ms is over {shadow.max_latency_ratio:g}× "
                f"production's {prod_p95 * 1000:.1f} ms on the same requests"
            )
        if agreement is None:
            verdict = "fail" if verdict == "fail" else "inconclusive"
            reasons.append("no answers of both colours to compare (every joined request failed)")
        elif agreement < shadow.min_agreement:
            verdict = "fail"
            what = "argmax agreement" if kind == "classifier" else "agreement within the relative difference"
            reasons.append(f"{what} {agreement:.2%} < {shadow.min_agreement:.2%} over {rows} answers")
    comparison = {
        "production_colour": production,
        "candidate_colour": candidate,
        "production_requests": len(prod),
        "mirrored_requests": len(cand),
        "joined": n,
        "output": kind,
        "agreement": None if agreement is None else round(agreement, 6),
        "rows_compared": rows,
        "max_relative_difference": round(max_rel, 6) if kind == "regression" else None,
        "candidate_error_rate": round(cand_rate, 6),
        "production_error_rate": round(prod_rate, 6),
        "candidate_p95_seconds": None if cand_p95 is None else round(cand_p95, 6),
        "production_p95_seconds": None if prod_p95 is None else round(prod_p95, 6),
        "disagreeing_request_ids": disagreeing,
        "thresholds": asdict(shadow),
    }
    return {
        "name": WINDOW,
        "verdict": verdict,
        "requests": n,
        "error_rate": round(cand_rate, 6),
        "p95_seconds": comparison["candidate_p95_seconds"],
        "reasons": reasons,
        "at": time.time(),
        "comparison": comparison,
    }


def compare_metrics(
    cand: analysis.Measurement, prod: analysis.Measurement, thresholds: analysis.Thresholds
) -> dict[str, Any]:
    """Without per-request records: each colour's metrics over the window, agreement unmeasured."""
    base = analysis.evaluate(WINDOW, cand, thresholds).to_dict()
    reasons = list(base["reasons"])
    if base["verdict"] == "pass":
        base["verdict"] = "inconclusive"
    reasons.append(
        "output agreement is not measured on this runtime (its model servers' answers are not "
        "collected); check the candidate, then `mlctl release promote` or `abort`"
    )
    base["reasons"] = reasons
    base["comparison"] = {
        "mirrored_requests": int(cand.requests),
        "production_requests": int(prod.requests),
        "candidate_error_rate": round(cand.error_rate, 6),
        "production_error_rate": round(prod.error_rate, 6),
        "candidate_p95_seconds": cand.p95_seconds,
        "production_p95_seconds": prod.p95_seconds,
        "agreement": None,
    }
    return base


def summary(entry: dict[str, Any]) -> str:
    """One line for reasons and logs: the numbers a person looks at first."""
    c = entry.get("comparison") or {}
    agreement = c.get("agreement")
    parts = [
        f"agreement {'not measured' if agreement is None else f'{agreement:.2%}'}",
        f"{c.get('joined', entry.get('requests', 0))} joined requests",
        f"candidate errors {c.get('candidate_error_rate', 0):.2%} vs production {c.get('production_error_rate', 0):.2%}",
    ]
    cp, pp = c.get("candidate_p95_seconds"), c.get("production_p95_seconds")
    if cp is not None and pp is not None:
        parts.append(f"p95 {cp * 1000:.1f} ms vs {pp * 1000:.1f} ms")
    return "shadow comparison: " + ", ".join(parts)


# -- the SHADOW step -------------------------------------------------------------------------------
def run(eng: Engine, row: ReleaseRow, cfg: ReleaseConfig, step: int = 0) -> dict[str, Any]:
    """Mirror, wait out the window, compare, record; idempotent (``resume`` measures the same window)."""
    driver = eng.driver
    production = row.previous_colour
    if production is None:
        raise StepFailed(WINDOW, ["no production colour to compare with"])
    if not isinstance(driver, Mirroring) or driver.mirror_support():
        raise StepFailed(WINDOW, ["this runtime cannot mirror requests"])

    def start() -> dict[str, Any]:
        if isinstance(driver, RequestRecords):
            return {}
        return {"metrics": {c: analysis.begin(driver.metrics_source(row.service, c)) for c in (production, row.colour)}}

    base = window.open_window(row.id, WINDOW, start)
    # The window starts before the mirror is on: nothing the candidate answers is missed.
    driver.set_mirror(row.service, row.colour, cfg.mirror_percent)
    window.wait(eng, row.id, WINDOW, float(base["t"]) + cfg.shadow_window)

    if isinstance(driver, RequestRecords):
        entry = compare(
            driver.shadow_records(row.service, float(base["t"])),
            production=production,
            candidate=row.colour,
            thresholds=cfg.thresholds,
            shadow=cfg.shadow,
        )
    else:
        m = base["metrics"]
        entry = compare_metrics(
            analysis.measure(driver.metrics_source(row.service, row.colour), m[row.colour]),
            analysis.measure(driver.metrics_source(row.service, production), m[production]),
            cfg.thresholds,
        )
    entry["mirror_percent"] = cfg.mirror_percent
    entry["window_seconds"] = cfg.shadow_window
    entry["window_start"] = float(base["t"])
    promote = repository.requested(row.id) == "promote"
    line = summary(entry)
    with session_scope() as s:
        cur = repository.load(s, row.id)
        repository.add_analysis(cur, entry)
        record.audit(
            s,
            "release.shadow",
            cur.service,
            row.id,
            decision="allow" if entry["verdict"] == "pass" else "deny",
            reasons=entry["reasons"],
            details={"verdict": entry["verdict"], "comparison": entry["comparison"]},
        )
    if entry["verdict"] == "fail":
        raise StepFailed(WINDOW, [line, *entry["reasons"]])
    if entry["verdict"] == "inconclusive" and not promote:
        window.pause(row, WINDOW, entry["reasons"], entry)
    driver.clear_mirror(row.service)
    window.close(row.id)
    return {"analysis": entry, "summary": line}


def finish(eng: Engine, row: ReleaseRow, cfg: ReleaseConfig | None = None, step: int = 0) -> dict[str, Any]:
    """``SHADOW_DONE``: the shadow passed and no cutover was asked for; remove the candidate."""
    out: dict[str, Any] = {}
    if stop_mirror(eng.driver, row.service):
        out["mirror"] = "cleared"
    if (
        row.colour in eng.driver.deployed(row.service)
        and eng.driver.traffic(row.service).get(row.colour, 0) == 0
    ):
        eng.driver.delete(row.service, row.colour)
        out["removed"] = row.colour
    return out
