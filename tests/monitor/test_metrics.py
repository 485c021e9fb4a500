"""Metrics are derived from the event log: events from any process show up at the exporter."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from control_plane.emulator.processes import free_port, wait_for_port
from control_plane.events import emit
from control_plane.monitor import metrics
from control_plane.monitor.exporter import make_metrics_server
from tests.cli_runner import start_mlctl


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _emit_lifecycle() -> None:
    # as the release engine emits them: subject service/<name>, data.release, data.step = canary index
    emit("release.created", "service/fraud", {"release": "r1", "model": "fraud:3"})
    emit("release.green_applied", "service/fraud", {"release": "r1", "step": 0})
    emit("release.switched", "service/fraud", {"release": "r1", "step": 0})
    emit("release.done", "service/fraud", {"release": "r1", "step": 0})
    emit("release.rolled_back", "service/fraud", {"release": "r2", "step": 0})
    metrics.record_step("rollback", 7.0, "service/fraud")
    metrics.record_gate("policy", "deny", "fraud:3")
    metrics.record_gate("validation", "allow", "fraud:4")
    emit(
        "drift.checked",
        "svc",
        {
            "source": "service:fraud",
            "drift_detected": True,
            "features": [{"name": "amount", "scores": {"psi": 0.31, "ks_statistic": 0.2}}],
        },
    )


def test_exporter_serves_metrics_folded_from_events(mlctl_home: Path) -> None:
    _emit_lifecycle()
    server = make_metrics_server("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        s = _samples(httpx.get(url, timeout=5).text)
        assert s[("mlctl_releases_total", (("outcome", "done"),))] == 1
        assert s[("mlctl_releases_total", (("outcome", "rolled_back"),))] == 1
        assert s[("mlctl_rollbacks_total", (("service", "fraud"),))] == 1
        assert s[("mlctl_gate_decisions_total", (("decision", "deny"), ("gate", "policy")))] == 1
        assert s[("mlctl_step_duration_seconds_count", (("step", "green_applied"),))] == 1
        assert s[("mlctl_step_duration_seconds_count", (("step", "done"),))] == 1
        assert ("mlctl_step_duration_seconds_count", (("step", "created"),)) not in s  # no step before it
        assert s[("mlctl_step_duration_seconds_sum", (("step", "rollback"),))] == 7.0
        assert (
            s[("mlctl_drift_score", (("feature", "amount"), ("source", "service:fraud"), ("test", "psi")))]
            == 0.31
        )
        assert s[("mlctl_drift_detected", (("source", "service:fraud"),))] == 1
        # another *process* emits: the next scrape sees it (counters survive short-lived CLIs)
        subprocess.run(
            [
                sys.executable,
                "-c",
                "from control_plane.events import emit;[emit('release.done', 'other', {}) for _ in range(3)]",
            ],
            check=True,
            env=os.environ.copy(),
            timeout=60,
        )
        s = _samples(httpx.get(url, timeout=5).text)
        assert s[("mlctl_releases_total", (("outcome", "done"),))] == 4
        assert s[("mlctl_events_total", (("type", "release.done"),))] == 4
    finally:
        server.shutdown()
        server.server_close()


def test_restarted_exporter_rebuilds_the_same_numbers(mlctl_home: Path) -> None:
    _emit_lifecycle()
    first = _samples(metrics.render().decode())
    second = _samples(metrics.render().decode())
    assert first == second and first[("mlctl_releases_total", (("outcome", "done"),))] == 1


def test_cli_serve_metrics(mlctl_home: Path) -> None:
    _emit_lifecycle()
    port = free_port()
    proc = start_mlctl("monitor", "serve-metrics", "--port", str(port), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for_port("127.0.0.1", port, timeout=60, name="metrics exporter")
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert 'mlctl_releases_total{outcome="done"} 1.0' in text
    finally:
        proc.terminate()
        proc.wait(timeout=10)
