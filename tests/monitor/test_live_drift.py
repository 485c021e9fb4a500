"""`mlctl monitor drift SERVICE` on the live request log written by a real local model server."""

from __future__ import annotations

import json
import sys

import httpx
import numpy as np
import pandas as pd
import pytest

from control_plane.emulator import processes
from control_plane.samples.digits import build_sample_model
from tests.cli_runner import run_mlctl


@pytest.fixture()
def served_digits(tmp_path):
    model = build_sample_model(tmp_path / "digits", variant="v1")
    port = processes.free_port()
    processes.spawn("test-digits-blue", [
        sys.executable, "-m", "control_plane.drivers.local_server", "--model-dir", str(model.path),
        "--name", "digits", "--port", str(port), "--model", "digits", "--version", "1",
    ])
    try:
        processes.wait_for_port("127.0.0.1", port, timeout=60, name="test-digits-blue")
        yield model, f"http://127.0.0.1:{port}"
    finally:
        processes.stop("test-digits-blue")


def _send(url: str, rows: np.ndarray) -> None:
    with httpx.Client(timeout=10) as client:
        for row in rows:
            body = {"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": row.tolist()}]}
            r = client.post(f"{url}/v2/models/digits/infer", json=body)
            assert r.status_code == 200, r.text


def _drift(service: str, reference, *extra: str):
    return run_mlctl("monitor", "drift", service, "--reference", str(reference), "--remediate", "none", "-o", "json",
                     *extra)


def test_drift_on_live_requests(served_digits, tmp_path, mlctl_home):
    model, url = served_digits
    x, _ = model.eval_set()
    reference = tmp_path / "reference.csv"
    pd.DataFrame(x, columns=[f"input_{j}" for j in range(64)]).to_csv(reference, index=False)

    _send(url, x[:300])
    log = mlctl_home / "serving" / "digits" / "requests.jsonl"
    first = json.loads(log.read_text().splitlines()[0])
    assert (first["service"], first["model"], first["version"]) == ("digits", "digits", "1")
    calm = _drift("digits", reference, "--fail-on-drift")
    assert calm.returncode == 0, calm.stdout + calm.stderr
    assert json.loads(calm.stdout)["drifted_features"] == []

    rng = np.random.default_rng(3)
    shifted = np.clip(x[:300] + rng.uniform(0.3, 0.6, size=(300, 64)).astype(np.float32) * (x[:300] > 0), 0, 1)
    _send(url, shifted)
    loud = _drift("digits", reference, "--fail-on-drift", "--last", "300")
    assert loud.returncode == 5, loud.stdout + loud.stderr
    report = json.loads(loud.stdout)
    assert report["drift_detected"] and len(report["drifted_features"]) >= 5
