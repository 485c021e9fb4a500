"""A bounded, paced request stream through the gateway (loopback only): the steady traffic of
``make demo``, the release tests and the cutover bench. Raw ``http.client`` keeps the client cheap
on a small machine, so the load it measures is the gateway's and the model servers', not its own."""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse


@dataclass
class Sample:
    t: float  # monotonic time the request was sent
    status: int  # HTTP status; 0 = transport failure
    served_by: str  # X-Served-By (host:port of the model server), "" if none
    latency: float


@dataclass
class LoadStats:
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return len(self.samples)

    @property
    def ok(self) -> int:
        return sum(1 for s in self.samples if s.status == 200)

    @property
    def failed(self) -> int:
        return self.sent - self.ok


class LoadStream:
    """``rate`` requests/s over ``threads`` keep-alive connections until ``stop()`` or the bounds."""

    def __init__(
        self,
        base_url: str,
        model: str,
        body: dict[str, Any],
        *,
        rate: float = 250.0,
        threads: int = 8,
        max_requests: int = 40_000,
        max_seconds: float = 180.0,
    ) -> None:
        url = urlparse(base_url)
        if url.hostname not in ("127.0.0.1", "localhost"):
            raise ValueError(f"the load generator talks to loopback only, not {url.hostname}")
        self.host: str = url.hostname
        self.port: int = url.port or 80
        self.path = f"/v2/models/{model}/infer"
        self.body = json.dumps(body).encode()
        self.rate, self.threads = rate, threads
        self.max_requests, self.max_seconds = max_requests, max_seconds
        self.stats = LoadStats()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self.started = 0.0

    def start(self) -> LoadStream:
        self.started = time.monotonic()
        for i in range(self.threads):
            t = threading.Thread(target=self._run, args=(i,), daemon=True)
            t.start()
            self._workers.append(t)
        return self

    def stop(self) -> LoadStats:
        self._stop.set()
        for t in self._workers:
            t.join(timeout=30)
        return self.stats

    def wait_for(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.stats.sent < count and time.monotonic() < deadline and not self._stop.is_set():
            time.sleep(0.05)

    @property
    def achieved_rate(self) -> float:
        if not self.stats.samples:
            return 0.0
        span = self.stats.samples[-1].t - self.stats.samples[0].t
        return self.stats.sent / span if span > 0 else 0.0

    def _conn(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=10)

    def _run(self, index: int) -> None:
        interval = self.threads / self.rate
        next_at = self.started + index * interval / self.threads
        conn = self._conn()
        headers = {"Content-Type": "application/json"}
        while not self._stop.is_set():
            now = time.monotonic()
            if now - self.started > self.max_seconds:
                break
            with self._lock:
                if len(self.stats.samples) >= self.max_requests:
                    break
            if next_at > now:
                time.sleep(next_at - now)
            next_at += interval
            t0 = time.monotonic()
            status, served = 0, ""
            try:
                conn.request("POST", self.path, body=self.body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                status, served = resp.status, resp.getheader("X-Served-By", "")
            except (OSError, http.client.HTTPException) as exc:
                with self._lock:
                    self.stats.errors.append(f"{type(exc).__name__}: {exc}")
                conn.close()
                conn = self._conn()
            with self._lock:
                self.stats.samples.append(Sample(t0, status, served, time.monotonic() - t0))
        conn.close()


def switch_latency(
    samples: list[Sample], decided_at: float, target: str, until: float | None = None
) -> float | None:
    """Seconds from a traffic decision until every later request (up to ``until``, e.g. the
    next decision) is answered by ``target``, the server address the gateway reports
    (``X-Served-By``). The resolution is the stream's request interval; None if it never
    converged within the samples.
    """
    end = float("inf") if until is None else until
    after = sorted((s for s in samples if decided_at <= s.t < end), key=lambda s: s.t)
    if not after:
        return None
    last_other = max((i for i, s in enumerate(after) if s.served_by != target), default=-1)
    if last_other == len(after) - 1:
        return None  # never converged within the samples we have
    return after[last_other + 1].t - decided_at
