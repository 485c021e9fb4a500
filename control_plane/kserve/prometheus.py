"""Release analysis on a cluster: error rate, p95 latency and request rate of one colour, read from a
Prometheus server's HTTP API (``GET /api/v1/query``).

The default queries read Triton's own metrics, which every InferenceService we render exposes
(``serving.kserve.io/enable-prometheus-scraping``, Triton's port 8002):

- ``nv_inference_request_success`` / ``nv_inference_request_failure`` (counters) for the request
  and error rates over the analysis window;
- ``nv_inference_request_summary_us{quantile="0.95"}`` for p95 latency. Triton publishes latency
  quantiles only as a summary (``--metrics-config summary_latencies=true``, set by the renderer), and
  summary quantiles cannot be averaged across pods, so we take the *worst* pod: conservative, which
  is what a gate wants.

Other setups (a mesh's request histograms, Knative's queue-proxy) plug in their own
``PromQueries``. No data (no traffic yet, NaN quantiles of an idle summary) is ``None``, never 0:
the release engine must treat it as inconclusive, not as healthy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from control_plane.drivers.base import MetricsSource
from control_plane.errors import InfraError, MlctlError


@dataclass(frozen=True)
class PromQueries:
    """PromQL templates; ``{selector}`` is the colour's label matchers, ``{window}`` the range."""

    request_rate: str
    error_rate: str
    p95_seconds: str
    requests_total: str  # requests in the window (for minimum-sample checks)
    errors_total: str


_OK: Final = "nv_inference_request_success{{{selector}}}"
_FAIL: Final = "nv_inference_request_failure{{{selector}}}"

TRITON: Final = PromQueries(
    request_rate=f"sum(rate({_OK}[{{window}}])) + sum(rate({_FAIL}[{{window}}]))",
    error_rate=(
        f"sum(rate({_FAIL}[{{window}}])) / (sum(rate({_OK}[{{window}}])) + sum(rate({_FAIL}[{{window}}])))"
    ),
    p95_seconds='max(nv_inference_request_summary_us{{quantile="0.95",{selector}}}) / 1e6',
    requests_total=f"sum(increase({_OK}[{{window}}])) + sum(increase({_FAIL}[{{window}}]))",
    errors_total=f"sum(increase({_FAIL}[{{window}}]))",
)


@dataclass(frozen=True)
class Sample:
    """One reading of a colour. ``None`` means Prometheus had no data for that figure."""

    requests_per_s: float | None
    error_rate: float | None
    p95_seconds: float | None
    window: str
    queries: dict[str, str] = field(default_factory=dict)

    @property
    def has_traffic(self) -> bool:
        return bool(self.requests_per_s)

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests_per_s": self.requests_per_s,
            "error_rate": self.error_rate,
            "p95_seconds": self.p95_seconds,
            "window": self.window,
        }


class PrometheusApi:
    """A small client for Prometheus' instant-query API."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        bearer_token: str | None = None,
        verify: bool | str = True,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise MlctlError(
                f"Prometheus URL {url!r} is not an http(s) URL",
                hint="pass the server's base URL, e.g. http://prometheus-operated.monitoring.svc:9090",
            )
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {bearer_token}"} if bearer_token else {}
        self._client = httpx.Client(timeout=timeout, headers=headers, verify=verify)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> PrometheusApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def query(self, promql: str) -> float | None:
        """The value of an instant query that returns one number (a scalar or a one-series vector)."""
        endpoint = f"{self.url}/api/v1/query"
        try:
            resp = self._client.get(endpoint, params={"query": promql})
        except httpx.HTTPError as exc:
            raise InfraError(
                f"cannot reach Prometheus at {self.url} ({exc})",
                hint="check the --prometheus-url and that mlctl can reach it (port-forward, VPN)",
            ) from None
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if resp.status_code != 200 or body.get("status") != "success":
            detail = body.get("error") or resp.text[:200]
            kind = body.get("errorType", f"HTTP {resp.status_code}")
            raise InfraError(
                f"Prometheus refused the query ({kind}: {detail}): {promql}",
                hint="check the query templates against your Prometheus (and its auth, for 401/403)",
            )
        data = body.get("data") or {}
        result_type, result = data.get("resultType"), data.get("result")
        if result_type == "scalar" and isinstance(result, list):
            return _number(result[1])
        if result_type == "vector":
            if not result:
                return None
            if len(result) > 1:
                raise InfraError(
                    f"the query returned {len(result)} series where one number was expected: {promql}",
                    hint="aggregate the query (sum/max) so that it returns one series",
                )
            return _number(result[0]["value"][1])
        raise InfraError(
            f"unexpected Prometheus result type {result_type!r} for {promql}", hint="use an instant query"
        )


def _number(raw: Any) -> float | None:
    value = float(raw)
    return None if math.isnan(value) or math.isinf(value) else value


class PrometheusAnalysis:
    """Reads one colour's figures (``MetricsSource`` from ``KubernetesDriver.metrics_source``)."""

    def __init__(
        self,
        source: MetricsSource,
        *,
        queries: PromQueries = TRITON,
        api: PrometheusApi | None = None,
    ) -> None:
        if source.kind != "prometheus-api":
            raise MlctlError(
                f"metrics source {source.kind!r} is not a Prometheus HTTP API",
                hint="use the driver's metrics_source(); local model servers are read from /metrics instead",
            )
        self.source = source
        self.queries = queries
        self.api = api or PrometheusApi(source.url)

    def sample(self, window: str = "2m") -> Sample:
        rendered = {
            name: getattr(self.queries, name).format(selector=self.source.selector, window=window)
            for name in ("request_rate", "error_rate", "p95_seconds")
        }
        rate = self.api.query(rendered["request_rate"])
        errors = self.api.query(rendered["error_rate"]) if rate else None
        p95 = self.api.query(rendered["p95_seconds"])
        return Sample(
            requests_per_s=rate, error_rate=errors, p95_seconds=p95, window=window, queries=rendered
        )


@dataclass(frozen=True)
class WindowTotals:
    """Counts over a window that started at a known time (what a resumed release re-measures)."""

    requests: float
    errors: float
    p95_seconds: float | None


def measure(
    source: MetricsSource,
    since: float,
    *,
    now: float | None = None,
    queries: PromQueries = TRITON,
    api: PrometheusApi | None = None,
) -> WindowTotals:
    """Requests, errors and p95 of one colour from ``since`` (a Unix time) to now.

    The window is rounded up to whole seconds (at least one); no data counts as zero requests,
    which a gate reads as "too few requests", i.e. inconclusive.
    """
    import time

    seconds = max(1, math.ceil((now if now is not None else time.time()) - since))
    window = f"{seconds}s"
    client = api or PrometheusApi(source.url)
    try:
        fmt = {"selector": source.selector, "window": window}
        requests = client.query(queries.requests_total.format(**fmt)) or 0.0
        errors = (client.query(queries.errors_total.format(**fmt)) or 0.0) if requests else 0.0
        p95 = client.query(queries.p95_seconds.format(**fmt))
    finally:
        if api is None:
            client.close()
    return WindowTotals(requests=requests, errors=errors, p95_seconds=p95)
