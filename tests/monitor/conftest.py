"""Fixtures for the monitoring tests: a real HTTP event sink on a free loopback port."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml


@dataclass
class Sink:
    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    fail_next: int = 0  # answer this many requests with 503 first
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, n: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= n:
                    return list(self.received)
            time.sleep(0.02)
        return list(self.received)


@pytest.fixture()
def http_sink() -> Iterator[Sink]:
    """An http.server that records every POST (headers + body) it receives."""
    sink = Sink(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with sink.lock:
                if sink.fail_next > 0:
                    sink.fail_next -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                sink.received.append(
                    {
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body,
                    }
                )
            self.send_response(202)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    sink.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()


def write_events_config(home: Path, sinks: list[dict[str, Any]]) -> Path:
    path = home / "events.yaml"
    path.write_text(yaml.safe_dump({"sinks": sinks}))
    return path


def body_json(request: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(request["body"])
    return data
