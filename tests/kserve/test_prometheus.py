"""The cluster analysis source against a real HTTP server answering like Prometheus' query API."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from control_plane.drivers.base import MetricsSource
from control_plane.emulator.processes import free_port
from control_plane.errors import InfraError, MlctlError
from control_plane.kserve.prometheus import PrometheusAnalysis, PrometheusApi, PromQueries

SELECTOR = 'namespace="serving",pod=~"fraud-green-predictor-.*"'


class FakePrometheus:
    """Answers /api/v1/query from a table of (start of the query -> result), records the queries."""

    def __init__(self) -> None:
        self.answers: list[tuple[str, dict]] = []
        self.queries: list[str] = []
        self.status = 200
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                if url.path != "/api/v1/query":
                    self.send_error(404)
                    return
                query = parse_qs(url.query)["query"][0]
                outer.queries.append(query)
                if outer.status != 200:
                    body = {"status": "error", "errorType": "bad_data", "error": "parse error at char 3"}
                    self._send(outer.status, body)
                    return
                for needle, data in outer.answers:
                    if query.startswith(needle):
                        self._send(200, {"status": "success", "data": data})
                        return
                self._send(200, {"status": "success", "data": {"resultType": "vector", "result": []}})

            def _send(self, code: int, body: dict) -> None:
                raw = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def vector(self, needle: str, value: str) -> None:
        self.answers.append(
            (needle, {"resultType": "vector", "result": [{"metric": {}, "value": [1764237600.0, value]}]})
        )


@pytest.fixture()
def prom() -> Iterator[FakePrometheus]:
    p = FakePrometheus()
    p.thread.start()
    try:
        yield p
    finally:
        p.server.shutdown()
        p.server.server_close()


def source(url: str) -> MetricsSource:
    return MetricsSource(kind="prometheus-api", url=url, selector=SELECTOR)


def test_sample_reads_error_rate_p95_and_rate(prom):
    prom.vector("sum(rate(nv_inference_request_success", "212.5")  # requests/s
    prom.vector("sum(rate(nv_inference_request_failure", "0.0125")  # error rate
    prom.vector("max(nv_inference_request_summary_us", "0.042")  # p95 (seconds after / 1e6)
    sample = PrometheusAnalysis(source(prom.url)).sample(window="90s")
    assert sample.requests_per_s == 212.5
    assert sample.error_rate == 0.0125
    assert sample.p95_seconds == 0.042
    assert sample.has_traffic
    assert sample.to_dict()["window"] == "90s"
    # every query is scoped to the colour's pods and the window
    assert len(prom.queries) == 3
    for q in prom.queries:
        assert SELECTOR in q
    assert "[90s]" in prom.queries[0] and "[90s]" in prom.queries[1]
    assert 'quantile="0.95"' in prom.queries[2] and prom.queries[2].startswith("max(")


def test_no_data_is_none_never_zero(prom):
    prom.vector("max(nv_inference_request_summary_us", "NaN")  # an idle Triton summary
    sample = PrometheusAnalysis(source(prom.url)).sample()
    assert sample.requests_per_s is None and sample.error_rate is None and sample.p95_seconds is None
    assert not sample.has_traffic


def test_custom_queries_and_scalars(prom):
    prom.answers.append(("vector(7)", {"resultType": "scalar", "result": [0, "7"]}))
    queries = PromQueries(
        request_rate="vector(7)",
        error_rate="vector(7) * 0",
        p95_seconds="vector(7) / 100",
        requests_total="vector(7) * 60",
        errors_total="vector(7) * 0",
    )
    api = PrometheusApi(prom.url)
    assert api.query("vector(7)") == 7.0
    sample = PrometheusAnalysis(source(prom.url), queries=queries, api=api).sample()
    assert sample.requests_per_s == 7.0


def test_errors_are_actionable(prom):
    prom.answers.append(
        (
            "many",
            {"resultType": "vector", "result": [{"metric": {"pod": "a"}, "value": [0, "1"]}] * 2},
        )
    )
    api = PrometheusApi(prom.url)
    with pytest.raises(InfraError, match="2 series") as exc:
        api.query("many")
    assert "aggregate" in (exc.value.hint or "")
    prom.status = 400
    with pytest.raises(InfraError, match="bad_data: parse error"):
        api.query("sum(")
    dead = PrometheusApi(f"http://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(InfraError, match="cannot reach Prometheus") as exc:
        dead.query("up")
    assert exc.value.hint
    with pytest.raises(MlctlError, match="not an http"):
        PrometheusApi("prometheus:9090")
    with pytest.raises(MlctlError, match="not a Prometheus HTTP API"):
        PrometheusAnalysis(MetricsSource(kind="prometheus-text", url="http://x/metrics"))


def test_measure_a_window_since_a_timestamp(prom):
    from control_plane.kserve.prometheus import measure

    prom.vector("sum(increase(nv_inference_request_success", "1200")
    prom.vector("sum(increase(nv_inference_request_failure", "3")
    prom.vector("max(nv_inference_request_summary_us", "0.031")
    totals = measure(source(prom.url), since=1000.0, now=1059.2)
    assert (totals.requests, totals.errors, totals.p95_seconds) == (1200.0, 3.0, 0.031)
    assert "[60s]" in prom.queries[0] and SELECTOR in prom.queries[0]
    prom.answers.clear()
    idle = measure(source(prom.url), since=1000.0, now=1000.0)
    assert (idle.requests, idle.errors, idle.p95_seconds) == (0.0, 0.0, None)
    assert "[1s]" in prom.queries[-2]  # (no error query without requests)
