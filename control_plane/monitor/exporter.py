"""The ``/metrics`` endpoint (``mlctl monitor serve-metrics``): a small WSGI server on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app

from control_plane.monitor.metrics import make_registry


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return  # one line per scrape is noise


def make_app() -> Callable[[dict[str, Any], Any], Iterable[bytes]]:
    app: Callable[[dict[str, Any], Any], Iterable[bytes]] = make_wsgi_app(make_registry())
    return app


def make_metrics_server(host: str, port: int) -> WSGIServer:
    """A server bound to ``host:port`` (not yet serving); ``serve_forever()`` to run it."""
    return make_server(host, port, make_app(), handler_class=_QuietHandler)
