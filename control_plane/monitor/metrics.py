"""Prometheus metrics of the control plane, derived from the event log at scrape time.

Why derived, not incremented in-process: ``mlctl`` runs as short-lived processes, so in-memory
counters die with each command. prometheus_client's multiprocess mode would persist them, but it
is switched on by an environment variable read when ``prometheus_client`` is first imported (kserve
imports it too, so the switch would also capture unrelated metrics) and it leaves one mmap file per
process id behind — thousands for a CLI. Every step already appends an event to
``$MLCTL_HOME/events/events.jsonl`` with one ``O_APPEND`` write (safe across processes), so the
event log is the single source of truth: the exporter folds it incrementally (it remembers its
offset) into the metric families below on each scrape, and a restarted exporter rebuilds the same
numbers from the log.

Event → metric mapping (producers only need to emit these events; see docs/monitoring.md):

- every event → ``mlctl_events_total{type}``
- ``release.done|rolled_back|refused|failed|aborted`` (or ``release.finished`` with
  ``data.outcome``) → ``mlctl_releases_total{outcome}``
- ``release.rolled_back`` / ``rollback.done`` → ``mlctl_rollbacks_total{service}``
- consecutive ``release.<state>`` events of one release (``data.release``): the time between them
  is the duration of the step that reached ``<state>`` → histogram ``mlctl_step_duration_seconds{step}``;
  an event with a string ``data.step`` and a numeric ``data.duration_s`` is observed as given
- ``gate.decided`` with ``data.gate`` and ``data.decision`` → ``mlctl_gate_decisions_total{gate,decision}``
- ``drift.checked`` with ``data.features[*].scores`` → gauge ``mlctl_drift_score{source,feature,test}``
  and ``mlctl_drift_detected{source}``
- dead-letter file lines → ``mlctl_events_dead_lettered_total{sink}``
"""

from __future__ import annotations

import json
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from control_plane.events import TYPE_PREFIX, dead_letter_path, emit, event_log_path

RELEASE_OUTCOMES = ("done", "rolled_back", "refused", "failed", "aborted")
STEP_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)


def _epoch(stamp: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class _Tail:
    """Reads only the lines appended to a file since the last call (a torn last line waits)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def new_records(self) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        size = self.path.stat().st_size
        if size < self.offset:  # truncated or rotated: start over
            self.offset = 0
        with self.path.open("rb") as fh:
            fh.seek(self.offset)
            chunk = fh.read()
        end = chunk.rfind(b"\n") + 1
        self.offset += end
        for line in chunk[:end].splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict):
                yield rec


class EventLogCollector(Collector):
    """Folds the event log and the dead-letter file into Prometheus metric families."""

    def __init__(self, events: Path | None = None, dead_letters: Path | None = None) -> None:
        self._events = _Tail(events or event_log_path())
        self._dead = _Tail(dead_letters or dead_letter_path())
        self._lock = threading.Lock()
        self.events_by_type: Counter[str] = Counter()
        self.releases: Counter[str] = Counter()
        self.rollbacks: Counter[str] = Counter()
        self.gates: Counter[tuple[str, str]] = Counter()
        self.steps: dict[str, list[float]] = defaultdict(list)  # per step: bucket counts then sum
        self.drift_scores: dict[tuple[str, str, str], float] = {}
        self.drift_detected: dict[str, float] = {}
        self.dead_lettered: Counter[str] = Counter()
        self._last_transition: dict[str, float] = {}  # release id -> time of its latest event

    def _fold(self, event: Mapping[str, Any]) -> None:
        etype = str(event.get("type", "")).removeprefix(TYPE_PREFIX)
        data = event.get("data") if isinstance(event.get("data"), dict) else {}
        assert isinstance(data, dict)
        subject = str(event.get("subject") or data.get("service") or "").removeprefix("service/")
        self.events_by_type[etype] += 1
        if etype.startswith("release."):
            state = etype.split(".", 1)[1]
            outcome = str(data.get("outcome", "")) if state == "finished" else state
            if outcome in RELEASE_OUTCOMES:
                self.releases[outcome] += 1
        if etype in ("release.rolled_back", "rollback.done"):
            self.rollbacks[subject] += 1
        duration = data.get("duration_s")
        if (
            isinstance(data.get("step"), str)
            and isinstance(duration, int | float)
            and not isinstance(duration, bool)
        ):
            self._observe(data["step"], float(duration))
        release_id = data.get("release")
        at = _epoch(event.get("time"))
        if etype.startswith("release.") and isinstance(release_id, str) and at is not None:
            previous = self._last_transition.get(release_id)
            if previous is not None and at >= previous:
                self._observe(etype.split(".", 1)[1], at - previous)
            self._last_transition[release_id] = at
        if etype == "gate.decided":
            self.gates[(str(data.get("gate", "unknown")), str(data.get("decision", "unknown")))] += 1
        if etype == "drift.checked":
            source = str(data.get("source") or subject)
            for feat in data.get("features", []) or []:
                if not isinstance(feat, dict):
                    continue
                for test, score in (feat.get("scores") or {}).items():
                    if isinstance(score, int | float):
                        self.drift_scores[(source, str(feat.get("name")), str(test))] = float(score)
            self.drift_detected[source] = 1.0 if data.get("drift_detected") else 0.0

    def _observe(self, step: str, duration: float) -> None:
        row = self.steps.setdefault(step, [0.0] * (len(STEP_BUCKETS) + 2))
        for i, bound in enumerate(STEP_BUCKETS):
            if duration <= bound:
                row[i] += 1
        row[len(STEP_BUCKETS)] += 1  # +Inf
        row[len(STEP_BUCKETS) + 1] += duration  # sum

    def refresh(self) -> None:
        with self._lock:
            for event in self._events.new_records():
                self._fold(event)
            for rec in self._dead.new_records():
                self.dead_lettered[str(rec.get("sink", "unknown"))] += 1

    def collect(self) -> Iterator[Any]:
        self.refresh()
        fam: Any = CounterMetricFamily("mlctl_events", "Lifecycle events emitted, by type.", labels=["type"])
        for etype, n in sorted(self.events_by_type.items()):
            fam.add_metric([etype], n)
        yield fam
        fam = CounterMetricFamily("mlctl_releases", "Releases finished, by outcome.", labels=["outcome"])
        for outcome in RELEASE_OUTCOMES:
            fam.add_metric([outcome], self.releases[outcome])
        yield fam
        fam = CounterMetricFamily("mlctl_rollbacks", "Rollbacks, by service.", labels=["service"])
        for service, n in sorted(self.rollbacks.items()):
            fam.add_metric([service], n)
        yield fam
        fam = CounterMetricFamily(
            "mlctl_gate_decisions", "Gate decisions, by gate and decision.", labels=["gate", "decision"]
        )
        for (gate, decision), n in sorted(self.gates.items()):
            fam.add_metric([gate, decision], n)
        yield fam
        fam = HistogramMetricFamily(
            "mlctl_step_duration_seconds", "Duration of release steps.", labels=["step"]
        )
        for step, row in sorted(self.steps.items()):
            buckets = [(str(b), row[i]) for i, b in enumerate(STEP_BUCKETS)]
            buckets.append(("+Inf", row[len(STEP_BUCKETS)]))
            fam.add_metric([step], buckets, sum_value=row[len(STEP_BUCKETS) + 1])
        yield fam
        fam = GaugeMetricFamily(
            "mlctl_drift_score",
            "Latest drift score per source, feature and test.",
            labels=["source", "feature", "test"],
        )
        for (source, feature, test), score in sorted(self.drift_scores.items()):
            fam.add_metric([source, feature, test], score)
        yield fam
        fam = GaugeMetricFamily(
            "mlctl_drift_detected",
            "1 when the latest drift check of a source found drift.",
            labels=["source"],
        )
        for source, flag in sorted(self.drift_detected.items()):
            fam.add_metric([source], flag)
        yield fam
        fam = CounterMetricFamily(
            "mlctl_events_dead_lettered", "Events that no retry could deliver, by sink.", labels=["sink"]
        )
        for sink, n in sorted(self.dead_lettered.items()):
            fam.add_metric([sink], n)
        yield fam


def make_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EventLogCollector())
    return registry


def render(registry: CollectorRegistry | None = None) -> bytes:
    """The exposition text (what a scrape returns)."""
    return generate_latest(registry or make_registry())


# Helpers for producers that have no event of their own to hang a metric on. Each emits the
# canonical event, so the metric and the event trail can never disagree.


def record_gate(gate: str, decision: str, subject: str, **data: Any) -> None:
    emit("gate.decided", subject, {"gate": gate, "decision": decision, **data})


def record_step(step: str, duration_s: float, subject: str, **data: Any) -> None:
    emit("step.finished", subject, {"step": step, "duration_s": duration_s, **data})


def record_release(outcome: str, service: str, **data: Any) -> None:
    emit("release.finished", service, {"outcome": outcome, "service": service, **data})
