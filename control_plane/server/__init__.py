"""``mlctl server``: the control plane as an authenticated HTTP API over the service layer.

- ``auth``: bearer tokens → a verified identity → a ``services.Context`` (401 otherwise);
- ``errors``: our error classes → HTTP status + the same ``{"error": {...}}`` body the CLI prints;
- ``app``: the FastAPI application (``create_app``), probes and Prometheus metrics;
- ``routes``: the verbs, each a translation to one service function (no domain logic here);
- ``serve``: uvicorn with TLS by default (``--insecure-dev`` for plain HTTP, dev tiers only).
"""

from control_plane.server.app import create_app

__all__ = ["create_app"]
