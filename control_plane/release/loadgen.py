"""A bounded, paced request stream through the gateway (loopback only): the steady traffic of
``make demo``, the release tests and the cutover bench. Raw ``http.client`` keeps the client cheap
on a small machine, so the load it measures is the gateway's and the model servers', not its own.

Every stream thread keeps one connection open for all its requests (HTTP/1.1 keep-alive, or one
HTTP/2 channel for gRPC), as production clients do; over ``https://`` it verifies the gateway's
certificate against the local CA (``control_plane.emulator.ca``). ``GrpcLoadStream`` sends the same
request as V2 gRPC ``ModelInfer``."""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from control_plane.emulator import ca


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
        tls: bool = True,
        keepalive: bool = True,
    ) -> None:
        url = urlparse(base_url if "://" in base_url else f"grpc://{base_url}")
        if url.hostname not in ("127.0.0.1", "localhost"):
            raise ValueError(f"the load generator talks to loopback only, not {url.hostname}")
        self.host: str = url.hostname
        self.tls = url.scheme == "https" or (url.scheme == "grpc" and tls)
        self.port: int = url.port or (443 if self.tls else 80)
        self.model = model
        self.path = f"/v2/models/{model}/infer"
        self.request = body
        self.body = json.dumps(body).encode()
        self.context: ssl.SSLContext | None = None
        if self.tls:
            self.context = ca.ssl_context()
        self.rate, self.threads = rate, threads
        self.max_requests, self.max_seconds = max_requests, max_seconds
        self.stats = LoadStats()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self.started = 0.0
        self.connections = 0  # connections opened (one per thread unless one failed)
        self.keepalive = keepalive  # False: a new connection (and TLS handshake) per request

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
        if self.context is not None:
            return http.client.HTTPSConnection(self.host, self.port, timeout=10, context=self.context)
        return http.client.HTTPConnection(self.host, self.port, timeout=10)

    def _slots(self, index: int) -> Iterator[float]:
        """Thread ``index``'s request times, paced at its share of ``rate`` (threads interleaved),
        until stopped, past ``max_seconds`` or ``max_requests``: yields each request's start."""
        interval = self.threads / self.rate
        next_at = self.started + index * interval / self.threads
        while not self._stop.is_set():
            now = time.monotonic()
            if now - self.started > self.max_seconds:
                return
            with self._lock:
                if len(self.stats.samples) >= self.max_requests:
                    return
            if next_at > now:
                time.sleep(next_at - now)
            next_at += interval
            yield time.monotonic()

    def _run(self, index: int) -> None:
        conn = self._conn()
        headers = {"Content-Type": "application/json"}
        with self._lock:
            self.connections += 1
        for t0 in self._slots(index):
            status, served = 0, ""
            try:
                conn.request("POST", self.path, body=self.body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                status, served = resp.status, resp.getheader("X-Served-By", "")
                if not self.keepalive:
                    conn.close()
                    conn = self._conn()
                    with self._lock:
                        self.connections += 1
            except (OSError, http.client.HTTPException) as exc:
                with self._lock:
                    self.stats.errors.append(f"{type(exc).__name__}: {exc}")
                    self.connections += 1
                conn.close()
                conn = self._conn()
            with self._lock:
                self.stats.samples.append(Sample(t0, status, served, time.monotonic() - t0))
        conn.close()


class GrpcLoadStream(LoadStream):
    """The same paced stream as V2 gRPC ``ModelInfer`` calls, one HTTP/2 channel per thread.

    ``target`` is ``host:port`` of the gateway (TLS, local CA; the call names the service in
    the ``mlctl-service`` metadata) or, with ``tls=False``, of a model server's gRPC port.
    """

    def _run(self, index: int) -> None:
        import grpc
        from tritonclient.grpc import service_pb2, service_pb2_grpc

        request = service_pb2.ModelInferRequest(model_name=self.model)
        for spec in self.request.get("inputs", []):
            tensor = request.inputs.add(name=spec["name"], datatype=spec["datatype"], shape=spec["shape"])
            tensor.contents.fp32_contents.extend(_flat(spec["data"]))
        metadata = (("mlctl-service", self.model),)
        target = f"{self.host}:{self.port}"
        if self.tls:
            creds = grpc.ssl_channel_credentials(root_certificates=ca.ca_cert_path().read_bytes())
            channel = grpc.secure_channel(target, creds)
        else:
            channel = grpc.insecure_channel(target)
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        with self._lock:
            self.connections += 1
        for t0 in self._slots(index):
            status, served = 0, ""
            try:
                _, call = stub.ModelInfer.with_call(request, metadata=metadata, timeout=10)
                status = 200
                served = dict(call.initial_metadata()).get("x-served-by", "")
            except grpc.RpcError as exc:
                with self._lock:
                    self.stats.errors.append(f"gRPC {exc.code().name}: {exc.details()}")
            with self._lock:
                self.stats.samples.append(Sample(t0, status, str(served), time.monotonic() - t0))
        channel.close()


def _flat(data: Any) -> list[float]:
    if isinstance(data, list):
        return [x for item in data for x in _flat(item)]
    return [float(data)]


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
