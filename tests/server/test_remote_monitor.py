"""`model validate`, `monitor drift`, `model optimize` and `pii scan` through `mlctl server`
(MLCTL_SERVER), over HTTPS with real tokens from the real OpenID provider: each gives what the local
command gives (same JSON, same exit codes), RBAC refusals come back as 403 with the local message
(audited on the verified identity), bad input gets the clear local error; the client's data files
are uploaded (413 over the limit), and the server never opens a path a client names."""

from __future__ import annotations

import io
import json
import tarfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from control_plane import audit, registry
from control_plane.events import read_event_log
from tests.cli_runner import run_mlctl
from tests.monitor.models import build_degraded, build_good
from tests.monitor.test_pii import EID
from tests.server.conftest import Api, both


@pytest.fixture()
def served(api: Api, monkeypatch: pytest.MonkeyPatch) -> Api:
    from control_plane.access.roles import write_assignments
    from tests.registry.conftest import ROLES

    write_assignments(ROLES)
    monkeypatch.setenv("MLCTL_SERVER", api.url)
    return api



def _as(monkeypatch: pytest.MonkeyPatch, api: Api, user: str) -> None:
    """Log ``user`` in for the server, and act as the same name for the local comparison run."""
    api.oidc.login(user)
    monkeypatch.setenv("MLCTL_ACTOR", user)


def _tar(request: dict[str, object], files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in {"request.json": json.dumps(request).encode(), **files}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_validate_a_registered_version_is_the_local_gate(served: Api, monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    monkeypatch.setenv("MLCTL_ACTOR", "eli")
    registry.register("digits", "1", build_good(tmp_path / "good", "v1"), code_commit="abcdef1")
    registry.register("digits", "3", build_degraded(tmp_path / "degraded"), code_commit="abcdef1")
    _as(monkeypatch, served, "eli")

    through, here = both(monkeypatch, served, "model", "validate", "digits:3", "--env", "uae-local",
                         "--baseline", "digits:1", "-o", "json")
    assert through.returncode == here.returncode == 4, through
    assert through.json() == here.json() and through.json()["decision"] == "fail"
    assert json.loads(through.stderr) == json.loads(here.stderr)  # the gate's error, as JSON
    through, here = both(monkeypatch, served, "model", "validate", "digits:1", "--env", "uae-local",
                         "--min-accuracy", "0.5")
    assert through.returncode == here.returncode == 0 and through.stdout == here.stdout, through
    assert "PASS" in through.stdout
    gate = [e for e in audit.entries() if e.action == "model.validate"]
    assert [e.decision for e in gate] == ["deny", "deny", "allow", "allow"]
    assert gate[0].details["identity"]["source"] == "verified" and gate[1].details["identity"]["source"] != "verified"

    for args, code, says in ((("digits:9", "--env", "uae-local"), 6, "digits:9"),
                             (("digits:1",), 2, "--env is required")):
        through, here = both(monkeypatch, served, "model", "validate", *args)
        assert through.returncode == here.returncode == code and says in through.stderr, through
        assert through.stderr == here.stderr
    r = run_mlctl("model", "validate", "--model-dir", str(tmp_path / "good"), in_process=True)
    assert r.returncode == 2 and "--model-dir, --baseline-dir, --eval and --schema are files" in r.stderr


def _cancer(tmp_path: Path) -> tuple[Path, Path, Path]:
    frame = load_breast_cancer(as_frame=True).frame
    idx = np.random.default_rng(8).permutation(len(frame))
    ref, cur = frame.iloc[idx[:284]].reset_index(drop=True), frame.iloc[idx[284:]].reset_index(drop=True)
    ref.to_csv(tmp_path / "ref.csv", index=False)
    cur.to_parquet(tmp_path / "same.parquet")
    cur["worst area"] *= 1.5
    cur.to_parquet(tmp_path / "cur.parquet")
    return tmp_path / "ref.csv", tmp_path / "same.parquet", tmp_path / "cur.parquet"


def test_drift_uploads_the_tables_and_is_the_local_report(served: Api, monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    ref, same, cur = _cancer(tmp_path)
    _as(monkeypatch, served, "eli")
    through, here = both(monkeypatch, served, "monitor", "drift", "-r", str(ref), "-c", str(cur),
                         "--fail-on-drift", "-o", "json")
    assert through.returncode == here.returncode == 5, through
    assert through.json() == here.json() and through.json()["drifted_features"] == ["worst area"]
    assert through.json()["reference"] == str(ref) and through.json()["current"] == str(cur)  # not the copy's
    assert json.loads(through.stderr) == json.loads(here.stderr)
    through, here = both(monkeypatch, served, "monitor", "drift", "-r", str(ref), "-c", str(same))
    assert through.returncode == here.returncode == 0 and through.stdout == here.stdout, through
    assert "no drift" in through.stdout

    (tmp_path / "drift.yaml").write_text("remediation: retrain\n")
    out = run_mlctl("monitor", "drift", "-r", str(ref), "-c", str(cur), "--config", str(tmp_path / "drift.yaml"),
                    "-o", "json", in_process=True, check=True).json()
    assert out["remediation"] == "retrain" and "retrain" in [a["action"] for a in out["actions"]]
    retrain = [e for e in read_event_log() if e["type"].endswith("retrain.required")]
    assert len(retrain) == 1 and retrain[0]["data"]["source"] == str(cur)

    served.oidc.login("ali")  # an auditor may look, not change what happens downstream
    r = run_mlctl("monitor", "drift", "-r", str(ref), "-c", str(cur), "--remediate", "retrain", in_process=True)
    assert r.returncode == 4 and "actor 'ali' (roles: auditor) lacks permission 'monitor.drift'" in r.stderr, r
    denied = [e for e in audit.entries() if e.action == "monitor.drift" and e.actor == "ali"]
    assert denied[-1].decision == "deny" and denied[-1].details["identity"]["source"] == "verified"
    assert len([e for e in read_event_log() if e["type"].endswith("retrain.required")]) == 1
    raw = served.call("POST", "/v1/monitor/drift", served.token("ali"), content=_tar(
        {"reference": "r.csv", "current": "c.csv", "remediation": "rollback"},
        {"files/reference/r.csv": b"a\n1\n", "files/current/c.csv": b"a\n2\n"}))
    assert raw.status_code == 403 and raw.json()["error"]["exit_code"] == 4

    r = run_mlctl("monitor", "drift", "-r", str(tmp_path / "nope.csv"), "-c", str(cur), in_process=True)
    assert r.returncode == 6 and "nope.csv does not exist" in r.stderr
    r = run_mlctl("monitor", "drift", "-c", str(cur), in_process=True)
    assert r.returncode == 2 and "--reference is required" in r.stderr
    # a path the client names is never opened on the server: only uploads and s3:// URIs
    raw = served.call("POST", "/v1/monitor/drift", served.token("eli"), content=_tar(
        {"reference": "/etc/passwd.csv", "current": str(cur)}, {}))
    assert raw.status_code == 400 and "the server reads s3:// URIs and uploaded files only" in raw.text, raw.text
    for bad, field in (({"reference": "s3://b/r.csv", "current": "s3://b/c.csv", "last": "many"}, "last"),
                       ({"reference": "s3://b/r.csv", "thresholds": {"psy": 0.1}}, "thresholds.psy")):
        raw = served.call("POST", "/v1/monitor/drift", served.token("eli"), content=_tar(bad, {}))
        assert raw.status_code == 422 and f"request.json: {field}" in raw.json()["error"]["message"], raw.text


def test_drift_reads_s3_uris_on_the_server(served: Api, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                          aws_emulator: str) -> None:
    import boto3

    ref, _, cur = _cancer(tmp_path)
    s3 = boto3.client("s3", endpoint_url=aws_emulator, region_name="me-central-1")
    bucket = "remote-drift-test"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "me-central-1"})
    s3.put_object(Bucket=bucket, Key="live/cur.parquet", Body=cur.read_bytes())
    _as(monkeypatch, served, "ali")  # a report without remediation: anyone logged in
    # the reference uploaded from here, the current table read by the server from the data lake
    through, here = both(monkeypatch, served, "monitor", "drift", "-r", str(ref), "-c", f"s3://{bucket}/live/cur.parquet",
                         "-o", "json")
    assert through.returncode == here.returncode == 0, through
    assert through.json() == here.json() and through.json()["drifted_features"] == ["worst area"]
    through, here = both(monkeypatch, served, "monitor", "drift", "-r", str(ref), "-c", f"s3://{bucket}/nope.csv")
    assert through.returncode == here.returncode == 6 and through.stderr == here.stderr, through


def test_drift_of_a_service_reads_the_servers_request_log(served: Api, monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    from tests.monitor.test_drift import _write_v2_log

    rng = np.random.default_rng(1)
    x = rng.random((200, 4)).astype(np.float32)
    ref = pd.DataFrame(x, columns=[f"input_{j}" for j in range(4)])
    ref["prediction"] = (x[:, 0] > 0.5).astype(int)
    ref.to_csv(tmp_path / "reference.csv", index=False)
    live = np.clip(x * 1.6, 0, 1)
    probs = np.stack([1 - (live[:, 0] > 0.5), live[:, 0] > 0.5], axis=1).astype(np.float32)
    _write_v2_log("svc", live, probs, model="digits", version="3")
    _as(monkeypatch, served, "eli")
    through, here = both(monkeypatch, served, "monitor", "drift", "svc", "-r", str(tmp_path / "reference.csv"),
                         "-o", "json")
    assert through.returncode == here.returncode == 0, through
    assert through.json() == here.json() and through.json()["current"] == "service:svc"
    assert (through.json()["model"], through.json()["version"]) == ("digits", "3") and through.json()["drift_detected"]
    # remediation by rollback goes through the release service as the verified caller: no release of
    # svc is recorded, so the rollback action reports why it was not done, the same on both sides
    through, here = both(monkeypatch, served, "monitor", "drift", "svc", "-r", str(tmp_path / "reference.csv"),
                         "--remediate", "rollback", "-o", "json")
    assert through.returncode == here.returncode == 0, through
    assert through.json() == here.json()
    rollback = [a for a in through.json()["actions"] if a["action"] == "rollback"]
    assert rollback and rollback[0]["ok"] is False and "svc" in rollback[0]["error"], through.json()["actions"]
    checks = [e for e in audit.entries() if e.action == "monitor.drift" and "rollback" in e.details["actions"]]
    assert [e.details["identity"]["source"] for e in checks] == ["verified", "asserted"]  # server, then local
    assert {e.decision for e in checks} == {"deny"}  # the check found drift


def test_optimize_builds_on_the_server_and_follows_it(served: Api, monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    from control_plane.samples.digits import build_sample_model

    monkeypatch.setenv("MLCTL_ACTOR", "eli")
    model = build_sample_model(tmp_path / "digits", variant="v1")
    registry.register("digits", "1", model.path, code_commit="0123456789abcdef0123456789abcdef01234567")
    registry.sign("digits", "1")

    served.oidc.login("dana")  # a data scientist may register, not optimize
    r = run_mlctl("model", "optimize", "digits:1", "--target", "onnx", "-o", "json", in_process=True)
    assert r.returncode == 4 and "actor 'dana' (roles: data-scientist) lacks permission 'model.optimize'" in r.stderr
    assert json.loads(r.stderr)["error"]["kind"] == "PolicyViolation"
    raw = served.call("POST", "/v1/models/digits/1/optimizations", served.token("dana"),
                      json={"env": "uae-local", "target": "onnx"})
    assert raw.status_code == 403
    denied = [e for e in audit.entries() if e.action == "model.optimize" and e.decision == "deny"]
    assert denied[-1].actor == "dana" and denied[-1].details["identity"]["source"] == "verified"
    assert [v.ref for v in registry.list_versions("digits")] == ["digits:1"]

    _as(monkeypatch, served, "eli")
    through, here = both(monkeypatch, served, "model", "optimize", "digits:1", "--target", "onnx",
                         "--precision", "int4")
    assert through.returncode == here.returncode == 1 and through.stderr == here.stderr, through
    assert "--precision 'int4' is not supported" in through.stderr
    through, here = both(monkeypatch, served, "model", "optimize", "digits:9", "--target", "onnx")
    assert through.returncode == here.returncode == 6 and through.stderr == here.stderr, through

    out = run_mlctl("model", "optimize", "digits:1", "--target", "onnx", "-o", "json", in_process=True)
    assert out.returncode == 0, out
    derived = registry.get_version("digits", "1+onnx")
    assert out.json()["derived"] == "digits:1+onnx" and out.json()["source"] == "digits:1"
    assert out.json()["build"] == "none" and derived.signature.signed and derived.registered_by == "eli"
    assert "optimize: " in out.stderr  # the server's progress lines, passed on
    entries = [e for e in audit.entries() if e.action == "model.register" and e.subject == "digits:1+onnx"]
    assert entries[-1].details["identity"]["source"] == "verified"
    through, here = both(monkeypatch, served, "model", "optimize", "digits:1", "--target", "onnx")  # again
    assert through.returncode == here.returncode == 0 and through.stdout == here.stdout, (through, here)
    assert "digits:1+onnx" in through.stdout
    r = run_mlctl("model", "optimize", "digits:1", "--kubeconfig", str(tmp_path / "kc"), in_process=True)
    assert r.returncode == 2 and "--kubeconfig is a file on this machine" in r.stderr
    other = served.call("GET", "/v1/optimizations/0123", served.token("eli"))
    assert other.status_code == 404
    started = served.call("POST", "/v1/models/digits/1/optimizations", served.token("eli"),
                          json={"env": "uae-local", "target": "onnx"})
    assert started.status_code == 202, started.text
    build = f"/v1/optimizations/{started.json()['id']}"
    assert served.call("GET", build, served.token("amira")).status_code == 404  # only its starter sees it
    token = served.token("eli")
    for _ in range(120):  # let it end here, so that nothing of it outlives this test's $MLCTL_HOME
        state = served.call("GET", build, token)
        assert state.status_code == 200, state.text
        if state.json()["done"]:
            break
        time.sleep(0.5)
    assert state.json()["done"] and state.json()["error"] is None
    assert state.json()["result"]["derived"] == "digits:1+onnx"


def test_pii_scan_uploads_the_data_and_names_the_clients_paths(served: Api, monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "customers.csv").write_text(f"name,eid,phone\nA,{EID},+971501234567\nB,none,none\n")
    (data / "sub" / "notes.txt").write_text("contact amira@example.ae\n")
    served.oidc.login("ali")  # a scan reads data and changes nothing: anyone logged in
    monkeypatch.chdir(tmp_path)
    for target in (str(data), "data", str(data / "customers.csv")):
        through, here = both(monkeypatch, served, "pii", "scan", target, "-o", "json")
        assert through.returncode == here.returncode == 0, through
        assert through.json() == here.json() and through.json()["findings"], through.json()
    through, here = both(monkeypatch, served, "pii", "scan", "data", "--classification", "internal")
    assert through.returncode == here.returncode == 4, through
    assert through.stdout == here.stdout and through.stderr == here.stderr
    assert "personal data found in data classified 'internal'" in through.stderr and "data/customers.csv" in through.stderr
    through, here = both(monkeypatch, served, "pii", "scan", "nowhere.csv")
    assert through.returncode == here.returncode == 6 and through.stderr == here.stderr

    monkeypatch.setenv("MLCTL_SERVER_MAX_UPLOAD_MB", "1")
    (tmp_path / "big.txt").write_text("x" * (2 * 1024 * 1024))
    r = run_mlctl("pii", "scan", str(tmp_path / "big.txt"), in_process=True)
    assert r.returncode == 2 and "over this server's limit of 1 MiB" in r.stderr and "scan a smaller file" in r.stderr
    raw = served.call("POST", "/v1/pii/scans", served.token("ali"), content=b"\0" * (2 * 1024 * 1024))
    assert raw.status_code == 413
    raw = served.call("POST", "/v1/pii/scans", None, content=_tar({"path": "x"}, {"files/data/x.txt": b"a"}))
    assert raw.status_code == 401
