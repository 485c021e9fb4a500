"""Delivery of one event to one sink: bounded exponential backoff inside a total time budget."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from control_plane.events.config import Sink

_BACKOFF_BASE_S = 0.1
_BACKOFF_MAX_S = 1.0


@dataclass(frozen=True)
class DeliveryResult:
    sink: str
    ok: bool
    attempts: int
    status: int | None = None
    error: str | None = None


def _request(sink: Sink, event: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    if sink.kind == "cloudevents":
        # CloudEvents HTTP protocol binding, structured content mode.
        return json.dumps(event).encode(), {"content-type": "application/cloudevents+json; charset=utf-8"}
    return json.dumps(event).encode(), {"content-type": "application/json"}


def deliver(sink: Sink, event: dict[str, Any]) -> DeliveryResult:
    """Try until a 2xx, a non-retryable 4xx, ``max_attempts`` or ``budget_s`` runs out."""
    body, headers = _request(sink, event)
    try:
        headers.update(sink.headers())
    except Exception as exc:  # a missing secret env var: dead-letter it, with the reason
        return DeliveryResult(sink=sink.name, ok=False, attempts=0, error=str(exc).splitlines()[0])
    deadline = time.monotonic() + sink.budget_s
    attempts = 0
    status: int | None = None
    error = "not attempted"
    with httpx.Client(follow_redirects=False) as client:
        while attempts < sink.max_attempts:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                error = f"time budget of {sink.budget_s}s spent ({error})"
                break
            attempts += 1
            try:
                resp = client.post(
                    sink.url, content=body, headers=headers, timeout=min(sink.timeout_s, remaining)
                )
                status = resp.status_code
                if 200 <= status < 300:
                    return DeliveryResult(sink=sink.name, ok=True, attempts=attempts, status=status)
                error = f"HTTP {status}"
                # 4xx other than timeout/throttling will not get better by retrying.
                if 400 <= status < 500 and status not in (408, 425, 429):
                    break
            except httpx.HTTPError as exc:
                # The exception text can echo the URL; keep only its class (URLs may carry tokens).
                error = type(exc).__name__
            if attempts < sink.max_attempts:
                pause = min(_BACKOFF_MAX_S, _BACKOFF_BASE_S * (2 ** (attempts - 1)))
                if time.monotonic() + pause >= deadline:
                    error = f"time budget of {sink.budget_s}s spent ({error})"
                    break
                time.sleep(pause)
    return DeliveryResult(sink=sink.name, ok=False, attempts=attempts, status=status, error=error)
