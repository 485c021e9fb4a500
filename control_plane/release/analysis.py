"""Metric analysis: error rate and p95 latency of one colour over a window, against thresholds.

A window opens with ``begin(source)`` (a JSON-able baseline, stored with the release so that a
resumed release measures the same window) and closes with ``measure(source, baseline)``.

- ``prometheus-text`` sources (the local model servers' ``/metrics``): the baseline is a
  snapshot of the counters; the window is the difference (a counter that went down means the
  server restarted, so the new value counts whole, as Prometheus' ``increase`` does).
- ``prometheus-api`` sources (a cluster's Prometheus): the baseline is a timestamp; the window
  is measured by ``control_plane.kserve.prometheus.measure`` (Triton's counters and latency
  summary over the elapsed range).

Errors are 5xx answers: a 4xx is the client's fault and must not fail a release. Too few
requests makes the verdict *inconclusive*, which pauses the release for a person (Argo
Rollouts' ``inconclusiveLimit`` behaviour).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import httpx

from control_plane.drivers.base import MetricsSource
from control_plane.emulator.ca import httpx_verify

REQUESTS = "mlctl_requests_total"
DURATION = "mlctl_request_duration_seconds"

Verdict = Literal["pass", "fail", "inconclusive"]


@dataclass(frozen=True)
class Thresholds:
    max_error_rate: float = 0.01  # fraction of requests answered 5xx
    max_p95_seconds: float = 0.5
    min_requests: int = 20  # fewer than this in the window: inconclusive


@dataclass(frozen=True)
class Measurement:
    requests: float
    errors: float
    p95_seconds: float | None

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class AnalysisResult:
    name: str  # which analysis (pre-promotion, post-promotion, canary step 2, ...)
    verdict: Verdict
    requests: int
    error_rate: float
    p95_seconds: float | None
    reasons: list[str] = field(default_factory=list)
    at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate(name: str, m: Measurement, t: Thresholds) -> AnalysisResult:
    reasons: list[str] = []
    verdict: Verdict = "pass"
    if m.requests < t.min_requests:
        verdict = "inconclusive"
        reasons.append(f"only {int(m.requests)} requests in the window (need {t.min_requests})")
    else:
        if m.error_rate > t.max_error_rate:
            verdict = "fail"
            reasons.append(f"error rate {m.error_rate:.2%} > {t.max_error_rate:.2%}")
        if m.p95_seconds is not None and m.p95_seconds > t.max_p95_seconds:
            verdict = "fail"
            reasons.append(f"p95 latency {m.p95_seconds * 1000:.1f} ms > {t.max_p95_seconds * 1000:.1f} ms")
    return AnalysisResult(
        name=name,
        verdict=verdict,
        requests=int(m.requests),
        error_rate=round(m.error_rate, 6),
        p95_seconds=None if m.p95_seconds is None else round(m.p95_seconds, 6),
        reasons=reasons,
    )


# -- Prometheus text format (local model servers) ---------------------------------------------
def _scrape(url: str, timeout: float = 2.0) -> dict[str, Any]:
    from prometheus_client.parser import text_string_to_metric_families

    with httpx.Client(timeout=timeout, trust_env=False, verify=httpx_verify(url)) as client:
        resp = client.get(url)
        resp.raise_for_status()
    codes: dict[str, float] = {}
    buckets: dict[str, float] = {}
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            if sample.name == REQUESTS:
                codes[sample.labels.get("code", "")] = sample.value
            elif sample.name == f"{DURATION}_bucket":
                buckets[sample.labels["le"]] = sample.value
    return {"codes": codes, "buckets": buckets}


def _delta(now: float, then: float) -> float:
    return now - then if now >= then else now  # counter reset: the process restarted


def quantile(q: float, buckets: dict[str, float]) -> float | None:
    """``histogram_quantile`` over cumulative buckets ``{le: count}`` (linear within a bucket)."""
    items = sorted(((math.inf if le == "+Inf" else float(le)), c) for le, c in buckets.items())
    if not items or items[-1][1] <= 0:
        return None
    rank = q * items[-1][1]
    prev_le, prev_c = 0.0, 0.0
    for le, c in items:
        if c >= rank:
            if math.isinf(le):
                return prev_le  # beyond the last finite bucket: its bound is the best we know
            if c == prev_c:
                return le
            return prev_le + (le - prev_le) * (rank - prev_c) / (c - prev_c)
        prev_le, prev_c = le, c
    return prev_le


def _measure_text(source: MetricsSource, baseline: dict[str, Any]) -> Measurement:
    now = _scrape(source.url)
    then_codes = baseline.get("codes", {})
    then_buckets = baseline.get("buckets", {})
    codes = {c: _delta(v, then_codes.get(c, 0.0)) for c, v in now["codes"].items()}
    buckets = {le: _delta(v, then_buckets.get(le, 0.0)) for le, v in now["buckets"].items()}
    total = sum(codes.values())
    errors = sum(v for c, v in codes.items() if c.startswith("5"))
    return Measurement(requests=total, errors=errors, p95_seconds=quantile(0.95, buckets))


# -- Prometheus HTTP API (clusters) ---------------------------------------------------------
def _measure_api(source: MetricsSource, baseline: dict[str, Any]) -> Measurement:
    # The cluster's queries (Triton's metrics, worst-pod p95) belong with the Kubernetes driver;
    # a local release scrapes the model servers' text metrics and never needs the Kubernetes client.
    from control_plane.kserve import prometheus  # lazy: pulls kubernetes (~1 s)

    totals = prometheus.measure(source, float(baseline["t"]))
    return Measurement(requests=totals.requests, errors=totals.errors, p95_seconds=totals.p95_seconds)


def begin(source: MetricsSource) -> dict[str, Any]:
    """Open an analysis window now; persist what this returns to measure the same window later."""
    if source.kind == "prometheus-text":
        return _scrape(source.url)
    return {"t": time.time()}


def measure(source: MetricsSource, baseline: dict[str, Any]) -> Measurement:
    if source.kind == "prometheus-text":
        return _measure_text(source, baseline)
    return _measure_api(source, baseline)
