"""Prometheus metrics of the API server (its own registry: a test process may hold several apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

__all__ = ["ServerMetrics"]


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("mlctl_api_requests_total", "API requests by route and status",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("mlctl_api_request_seconds", "API request latency by route",
                                 ["method", "route"], registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10))
        self.rejected = Counter("mlctl_api_tokens_rejected_total", "Bearer tokens refused, by short reason",
                                ["reason"], registry=self.registry)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def token_rejected(self, reason: str) -> None:
        self.rejected.labels(reason).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
