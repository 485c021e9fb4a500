"""One colour of a local service: a KServe ModelServer serving an ONNX model over the V2 protocol.

Run detached by ``LocalDriver.apply`` as
``python -m control_plane.drivers.local_server --model-dir DIR --name MODEL --port PORT``.

Beyond KServe's own ``/metrics`` histograms (predict latency only), the server counts every
request by status code and times it end to end (``mlctl_requests_total``,
``mlctl_request_duration_seconds``): release analysis needs an error rate and a p95 that include
failures, which KServe's predict histogram does not see.
"""

from __future__ import annotations

import argparse
import contextvars
import logging
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from control_plane.request_log import RequestLogWriter

_HOST = "127.0.0.1"  # loopback only: the gateway is the one way in


def _args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="mlctl-model-server")
    p.add_argument("--model-dir", required=True, type=Path)
    p.add_argument("--name", required=True)
    p.add_argument("--port", required=True, type=int)
    p.add_argument("--grpc-port", type=int, default=None, help="V2 gRPC port (loopback); none: REST only")
    p.add_argument("--model", default=None, help="registered model name (for the request log)")
    p.add_argument("--version", default=None, help="registered model version (for the request log)")
    p.add_argument("--colour", default=None, help="the colour this server is (for the request log)")
    return p.parse_args(argv)


class RequestLog:
    """The service's live request log, which ``mlctl monitor drift SERVICE`` reads: records are
    minimised (configured features only, PII-tagged fields dropped or hashed) and kept for a
    limited time; see control_plane/request_log/__init__.py (``RequestLogWriter``)."""

    def __init__(
        self, service: str, model: str | None, version: str | None, colour: str | None = None
    ) -> None:
        self._writer = RequestLogWriter(service, model, version, colour=colour)

    def write(self, inputs: list[dict[str, Any]] | None, outputs: list[dict[str, Any]] | None,
              **extra: Any) -> None:
        """``extra``: what a shadow comparison joins on (``request_id`` set by the gateway,
        ``mirror`` for the candidate's copies, ``code``, ``seconds`` end to end)."""
        self._writer.write(inputs, outputs, **extra)


def main(argv: list[str] | None = None) -> None:
    opts = _args(sys.argv[1:] if argv is None else argv)
    # kserve parses sys.argv at import time: hand it only what it understands.
    grpc_on = opts.grpc_port is not None
    sys.argv = [sys.argv[0], "--enable_grpc", str(grpc_on).lower(), "--enable_latency_logging", "false"]
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    import numpy as np
    import onnxruntime as ort
    import uvicorn
    from kserve import Model, ModelServer, model_server
    from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse
    from kserve.protocol.rest import server as rest_server
    from prometheus_client import Counter, Histogram

    requests_total = Counter("mlctl_requests", "V2 inference requests by status code", ["code"])
    duration = Histogram(
        "mlctl_request_duration_seconds",
        "V2 inference request latency, end to end inside the server",
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    )

    request_log = RequestLog(opts.name, opts.model, opts.version, opts.colour)
    # What predict() computed for the request in flight; the middleware writes the log line once
    # the status is known (so failures are logged too). A mutable holder per request, found
    # through a context variable that the request's task inherits from the middleware.
    current: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
        "mlctl_request", default=None
    )

    def _tensor(name: str, arr: Any) -> dict[str, Any]:
        return {"name": name, "shape": list(arr.shape), "datatype": "FP32", "data": arr.ravel().tolist()}

    class OnnxModel(Model):
        def __init__(self, name: str, model_dir: Path) -> None:
            super().__init__(name)
            self.model_dir = model_dir
            self.session: Any = None

        def load(self) -> bool:
            so = ort.SessionOptions()
            so.intra_op_num_threads = 1  # many small requests: threads only contend
            so.inter_op_num_threads = 1
            self.session = ort.InferenceSession(
                str(self.model_dir / "model.onnx"), sess_options=so, providers=["CPUExecutionProvider"]
            )
            self.ready = True
            return True

        async def predict(
            self,
            payload: Any,
            headers: dict[str, str] | None = None,
            response_headers: dict[str, str] | None = None,
        ) -> Any:
            assert isinstance(payload, InferRequest)
            feeds = {inp.name: inp.as_numpy().astype(np.float32, copy=False) for inp in payload.inputs}
            outputs = self.session.run(None, feeds)
            names = [o.name for o in self.session.get_outputs()]
            logged = {
                "inputs": [_tensor(k, v) for k, v in feeds.items()],
                "outputs": [
                    _tensor(n, np.asarray(a, dtype=np.float32)) for n, a in zip(names, outputs, strict=True)
                ],
            }
            holder = current.get()
            if holder is None:
                request_log.write(logged["inputs"], logged["outputs"])
            else:
                holder.update(logged)
            infer_outputs = []
            for out_name, arr in zip(names, outputs, strict=True):
                out = InferOutput(name=out_name, shape=list(arr.shape), datatype="FP32")
                out.set_data_from_numpy(np.asarray(arr, dtype=np.float32), binary_data=False)
                infer_outputs.append(out)
            return InferResponse(
                model_name=self.name, infer_outputs=infer_outputs, response_id=payload.id or uuid.uuid4().hex
            )

    class RequestMetrics:
        """Pure ASGI middleware: counts and times the inference calls (not health/metrics probes)."""

        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http" or not scope["path"].endswith("/infer"):
                await self.app(scope, receive, send)
                return
            start = time.perf_counter()
            status = {"code": 500}
            headers = dict(scope.get("headers") or [])
            holder: dict[str, Any] = {}
            current.set(holder)

            async def _send(message: Any) -> None:
                if message["type"] == "http.response.start":
                    status["code"] = message["status"]
                await send(message)

            try:
                await self.app(scope, receive, _send)
            finally:
                seconds = time.perf_counter() - start
                duration.observe(seconds)
                requests_total.labels(code=str(status["code"])).inc()
                request_id = headers.get(b"x-request-id", b"").decode("latin-1") or None
                request_log.write(
                    holder.get("inputs"),
                    holder.get("outputs"),
                    request_id=request_id,
                    mirror=headers.get(b"x-mlctl-mirror") == b"1",
                    code=status["code"],
                    seconds=round(seconds, 6),
                )

    # KServe binds 0.0.0.0; a local colour must listen on loopback only.
    class _LoopbackConfig(uvicorn.Config):
        def __init__(self, *a: Any, **kw: Any) -> None:
            kw["host"] = _HOST
            kw["access_log"] = False
            super().__init__(*a, **kw)

    rest_server.uvicorn.Config = _LoopbackConfig
    _grpc_on_loopback()
    model_server.app.add_middleware(RequestMetrics)

    model = OnnxModel(opts.name, opts.model_dir)
    try:
        model.load()
    except Exception as exc:  # a model that cannot load: exit non-zero, the driver reports it
        print(f"mlctl-model-server: cannot load {opts.model_dir}/model.onnx: {exc}", file=sys.stderr)
        sys.exit(3)
    server = ModelServer(
        http_port=opts.port,
        grpc_port=opts.grpc_port or 0,
        enable_grpc=grpc_on,
        enable_latency_logging=False,
        grace_period=5,
    )
    # KServe logs a trace line per request; at hundreds of requests/s that is only noise.
    logging.getLogger("kserve.trace").setLevel(logging.WARNING)
    server.start([model])


def _grpc_on_loopback() -> None:
    """KServe's gRPC server listens on ``[::]:PORT`` (every interface); bind loopback instead."""
    from grpc import aio
    from kserve.protocol.grpc import server as grpc_server

    class _Aio:
        def __getattr__(self, name: str) -> Any:
            return getattr(aio, name)

        @staticmethod
        def server(*a: Any, **kw: Any) -> Any:
            real = aio.server(*a, **kw)
            add = real.add_insecure_port

            def loopback(address: str) -> int:
                return int(add(address.replace("[::]:", f"{_HOST}:")))

            real.add_insecure_port = loopback
            return real

    grpc_server.aio = _Aio()


if __name__ == "__main__":
    main()
