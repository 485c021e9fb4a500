"""Shadow releases through the real gateway (nginx ``mirror``) and real model servers.

A label-permuted copy of the production model (healthy, fast, always wrong) is stopped by the
comparison with a report showing its agreement rate; a faithful model passes and, with
``--then blue-green``, is cut over. Throughout, a client sends real digits through the gateway and
every answer it gets is checked against what the *production* model computes for that input:
a shadow's answer never reaches a client."""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pytest

from control_plane import audit
from control_plane.drivers import gateway
from control_plane.drivers.local import LocalDriver
from control_plane.emulator import ca
from control_plane.release.models import ReleaseRow
from control_plane.store import session_scope
from tests.cli_runner import start_mlctl
from tests.release.helpers import FAST, mlctl_json

pytestmark = pytest.mark.slow

SHADOW = [
    "--strategy",
    "shadow",
    # Both colours share this machine's few cores with other work: latency noise between them is
    # not what these tests judge (the latency rules have their own unit tests).
    "--max-latency-ratio",
    "10",
    "--pre-analysis-requests",
    "20",
    "--scale-down-delay",
    "60",
]


@dataclass
class Answer:
    t: float
    index: int  # row of the eval set sent
    status: int
    served_by: str
    request_id: str
    probabilities: list[float]


@dataclass
class DigitsClient:
    """Sends the eval set's rows round-robin through the gateway, keeping every answer."""

    x: np.ndarray
    rate: float = 60.0
    answers: list[Answer] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> DigitsClient:
        self._thread.start()
        return self

    def stop(self) -> list[Answer]:
        self._stop.set()
        self._thread.join(timeout=30)
        return self.answers

    def _run(self) -> None:
        url = urlparse(gateway.url())
        tls = ca.ssl_context()  # the gateway speaks TLS with the local CA's certificate
        i = 0
        while not self._stop.is_set():
            row = self.x[i % len(self.x)]
            body = json.dumps(
                {"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": row.tolist()}]}
            )
            conn = http.client.HTTPSConnection(url.hostname, url.port, timeout=10, context=tls)
            try:
                conn.request(
                    "POST", "/v2/models/digits/infer", body=body, headers={"Content-Type": "application/json"}
                )
                resp = conn.getresponse()
                data = resp.read()
                probs = json.loads(data)["outputs"][0]["data"] if resp.status == 200 else []
                self.answers.append(
                    Answer(
                        time.time(),
                        i % len(self.x),
                        resp.status,
                        resp.getheader("X-Served-By", ""),
                        resp.getheader("X-Request-ID", ""),
                        probs,
                    )
                )
            except (OSError, http.client.HTTPException, ValueError) as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")
            finally:
                conn.close()
            i += 1
            time.sleep(1 / self.rate)


def _predict(model_dir, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(model_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"input": x})[0])


def _port(driver: LocalDriver, colour: str) -> str:
    return driver.server_address("digits", colour).rsplit(":", 1)[1]


def _shadow_entry(view: dict[str, Any]) -> dict[str, Any]:
    found = [a for a in view["analysis"] if a["name"] == "shadow"]
    assert len(found) == 1, view["analysis"]
    return found[0]


def test_disagreeing_model_is_stopped_and_clients_only_see_production(world):
    world.register("3", "permuted")
    x, _ = world.samples["v1"].eval_set()
    production = _predict(world.samples["v1"].path, x)
    permuted = _predict(world.samples["permuted"].path, x)
    assert (production.argmax(1) != permuted.argmax(1)).all()  # a leaked shadow answer would show

    code, v1 = mlctl_json("release", "digits:1", *FAST)
    assert code == 0 and v1["state"] == "DONE"
    driver = LocalDriver()
    blue = _port(driver, "blue")
    client = DigitsClient(x).start()
    try:
        code, view = mlctl_json(
            "release", "digits:3", *SHADOW, "--mirror-percent", "100", "--window", "4", "--min-requests", "20"
        )
        # The faithful v2 next, without a cutover: compared, then stopped with production unchanged.
        code2, view2 = mlctl_json(
            "release", "digits:2", *SHADOW, "--mirror-percent", "100", "--window", "4", "--min-requests", "20"
        )
    finally:
        answers = client.stop()

    # The permuted candidate: stopped by the comparison, with the agreement rate in the report.
    assert code == 10 and view["state"] == "ROLLED_BACK", view["reasons"]
    shadow = _shadow_entry(view)
    report = shadow["comparison"]
    assert shadow["verdict"] == "fail"
    assert report["output"] == "classifier" and report["joined"] >= 20
    assert report["agreement"] == 0.0 and report["rows_compared"] == report["joined"]
    assert any("agreement 0.00%" in r for r in view["reasons"]), view["reasons"]
    assert any("argmax agreement 0.00% < 95.00%" in r for r in view["reasons"]), view["reasons"]
    assert view["live"]["version"] == "1" and view["live"]["colour"] == "blue"
    assert view["weights"] == {"blue": 100}  # production never moved
    assert [a["name"] for a in view["analysis"]] == ["pre-promotion", "shadow"]

    # The faithful candidate: passes, and without --then the release ends there.
    assert code2 == 0 and view2["state"] == "SHADOW_DONE", (view2["paused"], view2["reasons"])
    ok = _shadow_entry(view2)
    assert ok["verdict"] == "pass" and ok["comparison"]["agreement"] >= 0.95
    assert view2["live"]["version"] == "1" and view2["weights"] == {"blue": 100}
    assert set(driver.deployed("digits")) == {"blue"}  # the candidate was removed
    assert gateway.mirror("digits") is None

    # What clients saw: every answer is production's, from production's server.
    assert not client.errors and len(answers) >= 100
    assert all(a.status == 200 for a in answers)
    assert {a.served_by.rsplit(":", 1)[1] for a in answers} == {blue}
    got = np.asarray([a.probabilities for a in answers], dtype=np.float32)
    want = production[[a.index for a in answers]]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # The join is on the ids the clients were given (the gateway's X-Request-ID).
    seen = {a.request_id for a in answers}
    assert len(seen) == len(answers) and all(len(r) == 32 for r in seen)
    assert report["disagreeing_request_ids"] and set(report["disagreeing_request_ids"]) <= seen

    shadows = [e for e in audit.entries() if e.action == "release.shadow"]
    assert [e.decision for e in shadows] == ["deny", "allow"]
    assert shadows[0].details["comparison"]["agreement"] == 0.0


def test_faithful_model_passes_then_blue_green(world):
    x, _ = world.samples["v1"].eval_set()
    production = _predict(world.samples["v1"].path, x)
    candidate = _predict(world.samples["v2"].path, x)
    code, _ = mlctl_json("release", "digits:1", *FAST)
    assert code == 0
    driver = LocalDriver()
    blue = _port(driver, "blue")
    client = DigitsClient(x).start()
    try:
        code, view = mlctl_json(
            "release",
            "digits:2",
            *SHADOW,
            "--mirror-percent",
            "50",
            "--window",
            "5",
            "--then",
            "blue-green",
            "--min-requests",
            "20",
            # long enough for 20 requests after the switch even when this machine is busy
            "--analysis-window",
            "4",
        )
        green = _port(driver, "green")
        time.sleep(1)
    finally:
        answers = client.stop()
    assert code == 0 and view["state"] == "DONE", (view["paused"], view["reasons"])
    assert [a["name"] for a in view["analysis"]] == ["pre-promotion", "shadow", "post-promotion"]
    shadow = _shadow_entry(view)
    report = shadow["comparison"]
    assert shadow["verdict"] == "pass" and report["agreement"] >= 0.95
    # About half of production's requests were copied (split_clients on the random request id).
    assert 0.25 <= report["mirrored_requests"] / report["production_requests"] <= 0.75, report
    assert view["weights"] == {"blue": 0, "green": 100} and view["live"]["version"] == "2"
    assert gateway.mirror("digits") is None

    switched = next(t for t in view["transitions"] if t["to"] == "SWITCHED" and t["phase"] == "begin")
    from datetime import datetime

    switch_at = datetime.fromisoformat(switched["at"]).timestamp()
    before = [a for a in answers if a.t < switch_at]
    assert len(before) >= 100 and all(a.status == 200 for a in answers)
    assert {a.served_by.rsplit(":", 1)[1] for a in before} == {blue}  # shadow's answers never reached us
    by_server = {blue: production, green: candidate}
    for a in answers:
        np.testing.assert_allclose(
            a.probabilities, by_server[a.served_by.rsplit(":", 1)[1]][a.index], rtol=1e-5
        )


def test_killed_during_the_shadow_window_resume_measures_the_same_window(world):
    code, _ = mlctl_json("release", "digits:1", *FAST)
    assert code == 0
    x, _ = world.samples["v1"].eval_set()
    client = DigitsClient(x, rate=40).start()
    proc = start_mlctl(
        "release", "digits:2", *SHADOW, "--mirror-percent", "100", "--window", "6", "--min-requests", "10",
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the shadow window never opened"
            with session_scope() as s:
                row = s.query(ReleaseRow).filter(ReleaseRow.strategy == "shadow").one_or_none()
                base = json.loads(row.baseline) if row is not None and row.baseline else None
            if base and base.get("name") == "shadow" and gateway.mirror("digits"):
                break
            time.sleep(0.05)
        opened = float(base["t"])
        time.sleep(1.5)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert gateway.mirror("digits") is not None  # the crash left the mirror on
        code, view = mlctl_json("release", "resume", "digits")
    finally:
        client.stop()
        if proc.poll() is None:
            proc.kill()
    assert code == 0 and view["state"] == "SHADOW_DONE", (view["paused"], view["reasons"])
    entry = _shadow_entry(view)
    assert entry["verdict"] == "pass"
    with session_scope() as s:
        assert s.get(ReleaseRow, view["release"]).baseline is None
    # Measured over the window opened before the crash: the requests mirrored before it count.
    assert entry["window_start"] == opened and entry["comparison"]["joined"] >= 10
    assert gateway.mirror("digits") is None and set(LocalDriver().deployed("digits")) == {"blue"}
