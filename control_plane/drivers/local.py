"""The local runtime: each colour is a detached KServe model server (REST and gRPC on loopback);
the gateway (``drivers.gateway``: nginx + Lua, TLS) splits the traffic without reloading.

State per service lives under ``$MLCTL_HOME/serving/<service>/<colour>.json`` (what runs, on
which port); processes are tracked by pid files named ``model-<service>-<colour>``. Everything
is re-read from disk on each call, so a new mlctl process (``release resume``) sees exactly
what the crashed one left.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx

from control_plane.drivers import gateway
from control_plane.drivers.base import (
    COLOURS,
    Deployment,
    MetricsSource,
    Readiness,
    check_weights,
)
from control_plane.emulator import processes
from control_plane.errors import Conflict, InfraError, NotFound
from control_plane.request_log import records_since
from control_plane.settings import state_dir


def _proc_name(service: str, colour: str) -> str:
    return f"model-{service}-{colour}"


class LocalDriver:
    """KServe ModelServer processes + the nginx gateway (see ``drivers.base`` for the contract)."""

    name = "local"

    def __init__(self, *, probe_timeout: float = 2.0) -> None:
        self.probe_timeout = probe_timeout

    # -- records -----------------------------------------------------------------------------
    def _record_path(self, service: str, colour: str) -> Path:
        return state_dir("serving", service) / f"{colour}.json"

    def _record(self, service: str, colour: str) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(self._record_path(service, colour).read_text())
            return data
        except FileNotFoundError:
            return None

    def _port(self, service: str, colour: str) -> int:
        rec = self._record(service, colour)
        if rec is None:
            raise NotFound(f"{service} has no {colour} deployment", hint="apply it first")
        return int(rec["port"])

    # -- Driver ------------------------------------------------------------------------------
    def apply(self, service: str, colour: str, deployment: Deployment) -> None:
        if colour not in COLOURS:
            raise InfraError(f"unknown colour {colour!r}", hint=f"use one of {COLOURS}")
        if deployment.local_path is None or not (deployment.local_path / "model.onnx").exists():
            raise InfraError(
                f"the local runtime serves ONNX models; {deployment.local_path} has no model.onnx",
                hint="release an ONNX model version (the local runtime has no TensorRT)",
            )
        name = _proc_name(service, colour)
        rec = self._record(service, colour)
        if (
            rec is not None
            and rec["deployment"]["digest"] == deployment.digest
            and processes.read_pid(name) is not None
        ):
            # The same bytes already run here (a resumed apply, or a rollback to a version still
            # up): keep the process, so rollback is instant; record who owns it now.
            rec["deployment"] = {**deployment.to_dict(), "local_path": rec["deployment"]["local_path"]}
            self._write_record(service, colour, rec)
            gateway.set_ports(service, colour, http_port=rec["port"], grpc_port=rec.get("grpc_port"))
            return
        if self.traffic(service).get(colour, 0) > 0:
            raise Conflict(
                f"{service}/{colour} still receives traffic; it cannot be replaced",
                hint="move traffic to the other colour first",
            )
        processes.stop(name)
        port, grpc_port = processes.free_port(), processes.free_port()
        pid = processes.spawn(
            name,
            [
                sys.executable,
                "-m",
                "control_plane.drivers.local_server",
                "--model-dir",
                str(deployment.local_path),
                "--name",
                service,
                "--port",
                str(port),
                "--grpc-port",
                str(grpc_port),
                "--model",
                deployment.model_name,
                "--version",
                deployment.model_version,
                "--colour",
                colour,
            ],
            env={"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"},
        )
        self._write_record(
            service,
            colour,
            {"port": port, "grpc_port": grpc_port, "pid": pid, "deployment": deployment.to_dict()},
        )
        # Reachable through the gateway's pinned route (smoke tests) at once; no traffic yet.
        gateway.set_ports(service, colour, http_port=port, grpc_port=grpc_port)

    def _write_record(self, service: str, colour: str, rec: dict[str, Any]) -> None:
        tmp = self._record_path(service, colour).with_suffix(".tmp")
        tmp.write_text(json.dumps(rec, indent=2))
        os.replace(tmp, self._record_path(service, colour))

    def ready(self, service: str, colour: str) -> Readiness:
        rec = self._record(service, colour)
        if rec is None:
            return Readiness(False, f"{colour} is not deployed", failed=True)
        if processes.read_pid(_proc_name(service, colour)) is None:
            return Readiness(
                False, f"{colour} model server exited: {self._log_tail(service, colour)}", failed=True
            )
        base = f"http://{gateway.HOST}:{rec['port']}"
        try:
            with httpx.Client(timeout=self.probe_timeout, trust_env=False) as client:
                server = client.get(f"{base}/v2/health/ready")
                if server.status_code != 200 or not server.json().get("ready"):
                    return Readiness(False, f"server not ready (HTTP {server.status_code})")
                model = client.get(f"{base}/v2/models/{service}/ready")
                if model.status_code != 200 or not model.json().get("ready"):
                    return Readiness(False, f"model not loaded (HTTP {model.status_code})")
        except (httpx.HTTPError, ValueError) as exc:
            return Readiness(False, f"not answering yet ({type(exc).__name__})")
        return Readiness(True, "ready")

    def set_traffic(self, service: str, weights: dict[str, int]) -> None:
        weights = check_weights(weights)
        for colour, weight in weights.items():
            if weight > 0 and processes.read_pid(_proc_name(service, colour)) is None:
                raise Conflict(
                    f"refusing to route {weight}% of {service} to {colour}: it is not running",
                    hint="apply the colour and wait until it is ready",
                )
        # The gateway knows each deployed colour's ports (recorded at apply, dropped at delete);
        # a colour at 0 % that no longer exists (scaled down, `local down`) is simply not routed.
        # In force for the next request when this returns: no reload, no connection dropped
        # (and the gateway is started if it is not running).
        gateway.set_weights(service, weights)

    def mirror_support(self) -> str | None:
        return None  # the gateway mirrors REST requests (release.shadow.Mirroring)

    def set_mirror(self, service: str, colour: str, percent: int) -> None:
        """Copy ``percent`` % of production requests to ``colour``; its answers are discarded."""
        if processes.read_pid(_proc_name(service, colour)) is None:
            raise Conflict(
                f"refusing to mirror {service} to {colour}: it is not running",
                hint="apply the colour and wait until it is ready",
            )
        # In force for the next request when this returns (no reload); idempotent for a resumed release.
        gateway.set_mirror(service, colour, percent)

    def clear_mirror(self, service: str) -> None:
        gateway.clear_mirror(service)

    def mirror(self, service: str) -> dict[str, Any] | None:
        return gateway.mirror(service)

    def shadow_records(self, service: str, since: float) -> list[dict[str, Any]]:
        """The request log's records of ``service`` written at or after ``since`` (epoch seconds):
        each names its colour, the gateway's request id, status, latency and outputs."""
        return records_since(service, since)

    def traffic(self, service: str) -> dict[str, int]:
        return dict(gateway.routes(service).get("weights", {}))

    def delete(self, service: str, colour: str) -> None:
        if self.traffic(service).get(colour, 0) > 0:
            raise Conflict(
                f"{service}/{colour} still receives traffic; it cannot be removed",
                hint="move traffic to the other colour first",
            )
        # Requests the gateway sent to this colour before traffic moved finish first; only then
        # is the server stopped (the gateway counts requests in flight per colour).
        gateway.wait_drained(service, colour)
        gateway.forget_colour(service, colour)
        processes.stop(_proc_name(service, colour))
        self._record_path(service, colour).unlink(missing_ok=True)

    def endpoint(self, service: str, colour: str | None = None) -> str:
        # Both through the gateway's TLS listener: one colour by its pinned route, whatever its
        # weight (smoke tests, pre-promotion analysis, metrics), or the weighted split.
        if colour is None:
            return gateway.url()
        self._port(service, colour)  # NotFound if the colour is not deployed
        return gateway.colour_url(service, colour)

    def metrics_source(self, service: str, colour: str) -> MetricsSource:
        return MetricsSource(kind="prometheus-text", url=f"{self.endpoint(service, colour)}/metrics")

    def deployed(self, service: str) -> dict[str, Deployment]:
        out: dict[str, Deployment] = {}
        for colour in COLOURS:
            rec = self._record(service, colour)
            if rec is not None:
                out[colour] = Deployment.from_dict(rec["deployment"])
        return out

    def remove_route(self, service: str) -> None:
        """Take the service off the gateway (its clients get 404); the colours keep running."""
        gateway.remove_route(service)

    # -- local extras ------------------------------------------------------------------------
    def server_address(self, service: str, colour: str) -> str:
        """``127.0.0.1:PORT`` of the colour's model server: what the gateway reports in
        ``X-Served-By`` (REST) and ``x-served-by`` (gRPC, its gRPC port) for it."""
        return f"{gateway.HOST}:{self._port(service, colour)}"

    def grpc_address(self, service: str, colour: str) -> str:
        rec = self._record(service, colour) or {}
        if not rec.get("grpc_port"):
            raise NotFound(f"{service}/{colour} has no gRPC port", hint="re-apply the colour")
        return f"{gateway.HOST}:{rec['grpc_port']}"

    def alive(self, service: str, colour: str) -> bool:
        return processes.read_pid(_proc_name(service, colour)) is not None

    def remove_service(self, service: str) -> None:
        """Tear a service down completely (demo/test clean-up): route first, then colours."""
        gateway.remove_route(service)
        for colour in COLOURS:
            processes.stop(_proc_name(service, colour))
            self._record_path(service, colour).unlink(missing_ok=True)

    def stop_all(self) -> int:
        """Stop every local model server and pending scale-down (``mlctl local down``)."""
        stopped = 0
        for pid_file in sorted(state_dir("run").glob("*.pid")):
            if pid_file.stem.startswith(("model-", "reaper-")) and processes.stop(pid_file.stem):
                stopped += pid_file.stem.startswith("model-")
        for service in self.services():
            for colour in COLOURS:
                self._record_path(service, colour).unlink(missing_ok=True)
            gateway.remove_route(service)
        return stopped

    def services(self) -> list[str]:
        root = state_dir("serving")
        return sorted(p.name for p in root.iterdir() if p.is_dir())

    def _log_tail(self, service: str, colour: str, lines: int = 3) -> str:
        try:
            text = processes.log_file(_proc_name(service, colour)).read_text(errors="replace")
        except FileNotFoundError:
            return "no log"
        tail = [ln for ln in text.strip().splitlines() if ln.strip()][-lines:]
        return " | ".join(tail)[-400:] or "no output"
