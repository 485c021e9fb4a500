"""`mlctl pipeline run/watch/status/list` through `mlctl server` (MLCTL_SERVER), over HTTPS with real
tokens from the real OpenID provider. Reads are the local views (same JSON, same tables, same exit
codes); a refused role gets the local message with 403, audited on the verified identity; input the
server cannot reach (a client path, a client pipeline file) gets a clear error and starts nothing;
and a real KFP local run, started by the server in its background and followed by the client,
ends with the local run's record and exit code (21: the data tests refused the data)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from control_plane import audit, pipelines
from control_plane.settings import PACKAGE_ROOT
from tests.cli_runner import run_mlctl
from tests.pipelines.conftest import BUCKET, bucket, datasets, pin  # noqa: F401  (bucket, datasets: fixtures)
from tests.server.conftest import Api, both

SAMPLE = PACKAGE_ROOT / "samples" / "pipeline"


@pytest.fixture()
def served(api: Api, mlctl_home: Path, monkeypatch: pytest.MonkeyPatch) -> Api:
    """The server, with `digits` defined in its $MLCTL_HOME (the sample with a one-candidate grid,
    so a run stays short), and this test's CLI pointed at it."""
    for var in ("MLCTL_BLUEPRINT", "MLCTL_ARTIFACT_STORE", "MLCTL_ROLES_FILE"):
        monkeypatch.delenv(var, raising=False)
    cfg = yaml.safe_load((SAMPLE / "digits.yaml").read_text())
    cfg.update(transforms_tests=str(SAMPLE / "test_transforms.py"), grid={"C": [1.0], "max_iter": [300]})
    cfg["features"]["dir"] = str(SAMPLE / "features")
    (mlctl_home / "pipelines").mkdir(mode=0o700)
    (mlctl_home / "pipelines" / "digits.yaml").write_text(yaml.safe_dump(cfg))
    monkeypatch.setenv("MLCTL_SERVER", api.url)
    return api





def _s3_pin(s3: object, key: str, path: Path) -> str:
    body = path.read_bytes()
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)  # type: ignore[attr-defined]
    return f"s3://{BUCKET}/{key}@sha256:{hashlib.sha256(body).hexdigest()}"


def _runs() -> list[str]:
    return [r.run_id for r in pipelines.list_runs()]


def test_list_and_status_are_the_local_views(served: Api, monkeypatch: pytest.MonkeyPatch,
                                             datasets: dict[str, Path]) -> None:  # noqa: F811
    served.oidc.login("eli")
    cfg = pipelines.load_config("digits")
    first = pipelines.begin(cfg, dataset=pin(datasets["v1"]))  # recorded runs (status running), not driven
    second = pipelines.begin(cfg, dataset=pin(datasets["v2"]), features="digits-pixels@1")
    through, here = both(monkeypatch, served, "pipeline", "list", "-o", "json")
    assert through.returncode == here.returncode == 0, through
    assert through.json() == here.json()
    assert [r["run_id"] for r in through.json()] == [second.run_id, first.run_id]
    assert through.json()[0]["created_by"] == "eli" and through.json()[0]["status"] == "running"
    through, here = both(monkeypatch, served, "pipeline", "list")
    assert through.stdout == here.stdout and second.run_id in through.stdout
    through, here = both(monkeypatch, served, "pipeline", "list", "--pipeline", "other", "-o", "json")
    assert through.json() == here.json() == []
    through, here = both(monkeypatch, served, "pipeline", "list", "--defined", "-o", "json")
    assert through.json() == here.json() and "digits" in through.json()

    through, here = both(monkeypatch, served, "pipeline", "status", first.run_id, "-o", "json")
    assert through.returncode == here.returncode == 0 and through.json() == here.json()
    assert through.json()["dataset"] == first.dataset and through.json()["features"] is None
    through, here = both(monkeypatch, served, "pipeline", "status", second.run_id)
    assert through.stdout == here.stdout and "digits-pixels@1" in through.stdout

    through, here = both(monkeypatch, served, "pipeline", "status", "digits-000000000000")
    assert through.returncode == here.returncode == 6 and through.stderr == here.stderr, through
    assert "pipeline run 'digits-000000000000' does not exist" in through.stderr
    assert served.call("GET", "/v1/pipelines/runs/nope", served.token("ali")).status_code == 404


def test_a_role_without_the_permission_is_refused_and_audited(served: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    dataset = f"s3://{BUCKET}/datasets/digits/train.csv@sha256:{'ab' * 32}"
    served.oidc.login("dana")  # a data scientist registers models; running pipelines is not hers
    through, here = both(monkeypatch, served, "pipeline", "run", "digits", "--dataset", dataset, "-o", "json")
    assert through.returncode == here.returncode == 4, through
    assert through.stderr == here.stderr
    error = json.loads(through.stderr)["error"]
    assert "actor 'dana' (roles: data-scientist) lacks permission 'pipeline.run'" in error["message"]
    assert error["kind"] == "PolicyViolation"
    r = run_mlctl("pipeline", "watch", "digits", "--once", in_process=True)
    assert r.returncode == 4 and "lacks permission 'pipeline.run'" in r.stderr
    raw = served.call("POST", "/v1/pipelines/digits/runs", served.token("dana"), json={"dataset": dataset})
    assert raw.status_code == 403 and raw.json()["error"]["exit_code"] == 4
    denied = [e for e in audit.entries() if e.action == "pipeline.run" and e.decision == "deny"]
    assert len(denied) == 4  # the run and the watch through the server, the raw call, the local run
    assert {e.actor for e in denied} == {"dana"}
    assert all(e.details["identity"]["source"] == "verified" for e in denied)
    assert _runs() == []  # nothing recorded, nothing started


def test_input_the_server_cannot_reach_gets_a_clear_error(served: Api, monkeypatch: pytest.MonkeyPatch,
                                                          datasets: dict[str, Path],  # noqa: F811
                                                          tmp_path: Path) -> None:
    served.oidc.login("eli")
    r = run_mlctl("pipeline", "run", "digits", "--dataset", pin(datasets["v1"]), in_process=True)
    assert r.returncode == 2, r
    assert f"--dataset {datasets['v1']}: the server reads data sets from object storage only" in r.stderr
    assert "--dataset s3://BUCKET/KEY@sha256:<64 hex>" in r.stderr  # the fix
    (tmp_path / "mine.yaml").write_text((SAMPLE / "digits.yaml").read_text())
    for verb in (("run", "--dataset", f"s3://{BUCKET}/k.csv@sha256:{'ab' * 32}"), ("watch", "--once")):
        r = run_mlctl("pipeline", verb[0], "--config", str(tmp_path / "mine.yaml"), *verb[1:], in_process=True)
        assert r.returncode == 2, r
        assert f"--config {tmp_path / 'mine.yaml'} is a file on this machine" in r.stderr
        assert "mlctl pipeline list --defined" in r.stderr
    r = run_mlctl("pipeline", "run", "digits", "--dataset", f"s3://{BUCKET}/k.csv@sha256:{'ab' * 32}",
                  "--env", "/etc/passwd.yaml", in_process=True)
    assert r.returncode == 2 and "an environment is named, not a file" in r.stderr, r

    through, here = both(monkeypatch, served, "pipeline", "run", "nope", "--dataset",
                         f"s3://{BUCKET}/k.csv@sha256:{'ab' * 32}", "-o", "json")
    assert through.returncode == here.returncode == 6 and through.stderr == here.stderr, through
    assert "pipeline 'nope' is not defined" in through.stderr
    through, here = both(monkeypatch, served, "pipeline", "run", "digits", "--dataset", f"s3://{BUCKET}/k.csv@md5:00",
                         "-o", "json")
    assert through.returncode == here.returncode == 2 and through.stderr == here.stderr, through
    assert "md5:00" in through.stderr
    r = run_mlctl("pipeline", "run", "digits", in_process=True)
    assert r.returncode == 2 and "--dataset is required" in r.stderr
    raw = served.call("POST", "/v1/pipelines/digits/runs", served.token("eli"), json={})
    assert raw.status_code == 422 and "dataset" in raw.json()["error"]["message"]
    raw = served.call("POST", "/v1/pipelines/..%2Fdigits/runs", served.token("eli"),
                      json={"dataset": f"s3://{BUCKET}/k.csv@sha256:{'ab' * 32}"})
    assert raw.status_code in (404, 422), raw.text  # never a path on the server
    raw = served.call("POST", "/v1/pipelines/Digits.yaml/watches", served.token("eli"), json={})
    assert raw.status_code == 422 and "is not valid" in raw.json()["error"]["message"]
    assert _runs() == []


def test_watch_looks_on_the_server(served: Api, bucket: object, datasets: dict[str, Path],  # noqa: F811
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    served.oidc.login("eli")
    _s3_pin(bucket, "datasets/digits/train.csv", datasets["v1"])
    adopted = run_mlctl("pipeline", "watch", "digits", "--once", "--adopt", "-o", "json", in_process=True, check=True)
    assert adopted.json()["changed"] is False and adopted.json()["observation"]["adopted"] is True
    again = run_mlctl("pipeline", "watch", "digits", "--once", "-o", "json", in_process=True, check=True).json()
    assert again["changed"] is False and again["run"] is None
    assert again["observation"]["sha256"] == hashlib.sha256(datasets["v1"].read_bytes()).hexdigest()
    table = run_mlctl("pipeline", "watch", "digits", "--once", in_process=True, check=True)
    assert "digits: no change" in table.stderr
    watched = [e for e in audit.entries() if e.action == "pipeline.watch"]
    assert [(e.actor, e.details["identity"]["source"]) for e in watched] == [("eli", "verified")]
    assert _runs() == []

    # A new object version starts one run on the server; the watcher follows it to its end (a
    # breaking schema change: the data tests refuse it, exit 21 with --once, as locally).
    _s3_pin(bucket, "datasets/digits/train.csv", datasets["schema-change"])
    r = run_mlctl("pipeline", "watch", "digits", "--once", "-o", "json", in_process=True)
    assert r.returncode == 21, r
    result = r.json()
    assert set(result) == {"changed", "observation", "run", "error"} and result["changed"] is True
    assert result["error"]["step"] == "data-tests" and "px_10: missing" in result["error"]["message"]
    (run_id,) = _runs()
    assert result["run"] == pipelines.get_run(run_id).to_dict() and result["run"]["trigger"] == "watch"
    again = run_mlctl("pipeline", "watch", "digits", "--once", "-o", "json", in_process=True, check=True).json()
    assert again["changed"] is False and _runs() == [run_id]  # the change is consumed: never trained twice


def test_a_run_through_the_server_ends_with_the_local_record_and_exit_code(
        served: Api, bucket: object, datasets: dict[str, Path]) -> None:  # noqa: F811
    """The cheapest real run: the data tests refuse a breaking schema change (exit 21). The CLI is its
    own process here, following the run the server drives in its background."""
    served.oidc.login("eli")
    dataset = _s3_pin(bucket, "datasets/digits/schema-change.csv", datasets["schema-change"])
    r = run_mlctl("pipeline", "run", "digits", "--dataset", dataset, "-o", "json")
    assert r.returncode == 21, r
    error = json.loads(r.stderr[r.stderr.index("{"):])["error"]
    assert error["kind"] == "DataTestFailed" and "px_10: missing" in error["message"]
    assert "--features digits-pixels@NEW" in error["hint"]
    payload = json.loads(r.stdout)
    assert payload["error"]["step"] == "data-tests" and payload["error"]["exit_code"] == 21
    (run_id,) = _runs()
    local = pipelines.get_run(run_id)
    assert payload["run"] == local.to_dict()
    assert local.status == "failed" and local.failed_step == "data-tests" and local.created_by == "eli"
    assert local.steps["data-tests"]["state"] == "failed"
    entries = [e for e in audit.entries() if e.action == "pipeline.run" and e.subject == "pipeline/digits"]
    assert [(e.details["phase"], e.decision, e.actor) for e in entries] == \
        [("start", "allow", "eli"), ("finish", "deny", "eli")]
    assert all(e.details["identity"]["source"] == "verified" for e in entries)
    from control_plane import registry

    assert registry.list_versions("digits") == []

    shown = run_mlctl("pipeline", "status", run_id, in_process=True)
    assert shown.returncode == 0 and "stopped at data-tests" in shown.stdout
    table = run_mlctl("pipeline", "run", "digits", "--dataset", dataset, "--force")  # progress, then the error
    assert table.returncode == 21, table
    assert "data-tests" in table.stderr and "failed" in table.stderr and "px_10: missing" in table.stderr


def test_a_successful_run_through_the_server_registers_a_signed_version(
        served: Api, bucket: object, datasets: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    from control_plane import registry

    served.oidc.login("eli")
    dataset = _s3_pin(bucket, "datasets/digits/train.csv", datasets["v1"])
    r = run_mlctl("pipeline", "run", "digits", "--dataset", dataset, in_process=True)
    assert r.returncode == 0, r
    assert "registered and signed digits:1" in r.stdout
    assert "register" in r.stderr and "done" in r.stderr  # the steps' progress, followed from the server
    (run_id,) = _runs()
    mv = registry.get_version("digits", "1")
    assert mv.signature.signed and mv.lineage["extra"]["pipeline"]["run_id"] == run_id
    assert [d["ref"] for d in mv.lineage["datasets"]] == [dataset]
    view = pipelines.get_run(run_id)
    assert (view.status, view.registered, view.created_by) == ("succeeded", "digits:1", "eli")

    through, here = both(monkeypatch, served, "pipeline", "status", run_id, "-o", "json")
    assert through.json() == here.json() == view.to_dict()
    again = run_mlctl("pipeline", "run", "digits", "--dataset", dataset, "-o", "json", in_process=True, check=True)
    assert again.json() == {**view.to_dict(), "reused": True}  # the same inputs train nothing, as locally
    assert _runs() == [run_id] and [v.ref for v in registry.list_versions("digits")] == ["digits:1"]


def _until_ended(api: Api, run_id: str, token: str, seconds: float = 300) -> dict:
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        body = api.call("GET", f"/v1/pipelines/runs/{run_id}", token).json()
        if body["status"] != "running":
            return dict(body)
        time.sleep(1)
    raise AssertionError(f"{run_id} still running after {seconds} s")


def test_the_steps_of_a_run_through_the_server_act_as_the_verified_caller(
        served: Api, bucket: object, datasets: dict[str, Path], mlctl_home: Path) -> None:  # noqa: F811
    """The server's own account is logged in as ali (its token cache, what the steps would resolve
    on their own); eli asks for the run. The steps register and sign as eli, as the server verified
    her, delegated for this run: not as the server's account."""
    from control_plane import registry

    served.oidc.login("ali")
    eli = served.token("eli")
    dataset = _s3_pin(bucket, "datasets/digits/train.csv", datasets["v1"])
    raw = served.call("POST", "/v1/pipelines/digits/runs", eli, json={"dataset": dataset})
    assert raw.status_code == 202, raw.text
    run_id = raw.json()["run_id"]
    assert "MLCTL_DELEGATION" not in json.dumps(raw.json()) and "mlctl-delegation" not in raw.text
    ended = _until_ended(served, run_id, eli)
    assert (ended["status"], ended["registered"], ended["created_by"]) == ("succeeded", "digits:1", "eli"), ended
    assert registry.get_version("digits", "1").registered_by == "eli"

    done = [e for e in audit.entries() if e.action in ("model.register", "model.sign") and e.subject == "digits:1"]
    assert [e.action for e in done] == ["model.register", "model.sign"]
    for e in done:
        assert (e.actor, e.roles) == ("eli", ["ml-engineer"])
        assert e.identity is not None
        assert (e.identity["method"], e.identity["issuer"], e.identity["subject"], e.identity["client"]) == \
            ("delegated", served.oidc.issuer, "eli", "mlctl-cli")
        assert e.details["identity"]["run"] == run_id and e.details["identity"]["delegated_by"] == "mlctl-server"
    assert not [e for e in audit.entries() if e.actor == "ali" and e.action.startswith("model.")]
    # The credential is in no record a caller or an auditor reads.
    log_text = "".join(p.read_text(errors="replace") for p in mlctl_home.rglob("run.log"))
    assert "mlctl-delegation.v1." not in log_text
    assert "mlctl-delegation.v1." not in json.dumps([e.details for e in audit.entries()])


def test_a_server_start_ends_the_runs_a_stopped_driver_left_running(
        served: Api, datasets: dict[str, Path], mlctl_home: Path) -> None:  # noqa: F811
    import os
    import socket
    import subprocess
    import time

    from control_plane.pipelines.models import PipelineRunRow
    from control_plane.store import session_scope
    from tests.server.conftest import running

    served.oidc.login("eli")
    cfg = pipelines.load_config("digits")
    gone = subprocess.Popen(["true"])
    gone.wait()
    alive = subprocess.Popen(["sleep", "120"])
    host = socket.gethostname()
    runs = {}
    try:
        for name, driver in (("dead", f"{host}:{gone.pid}"), ("alive", f"{host}:{alive.pid}"),
                             ("here", f"{host}:{os.getpid()}"), ("elsewhere", f"other-host:{gone.pid}"),
                             ("unrecorded", None)):
            view = pipelines.begin(cfg, dataset=pin(datasets["v1"]), force=True)
            runs[name] = view.run_id
            with session_scope() as s:
                row = s.get(PipelineRunRow, view.run_id)
                assert row is not None and row.driver == f"{host}:{os.getpid()}"  # begin records its process
                row.driver = driver
        status = mlctl_home / "pipelines" / "runs" / runs["dead"] / "status"
        status.mkdir(parents=True)
        (status / "fetch.json").write_text(json.dumps({"step": "fetch", "state": "done", "started": time.time()}))
        (status / "train.json").write_text(json.dumps({"step": "train", "state": "running", "started": time.time()}))

        with running():  # a server (re)start in the same $MLCTL_HOME
            pass

        dead = pipelines.get_run(runs["dead"])
        assert (dead.status, dead.failed_step, dead.exit_code) == ("failed", "train", 20)
        assert dead.error == (f"the run was interrupted in step train: the process driving it ({host}:{gone.pid}) "
                              "stopped before it finished (the server was stopped or restarted)")
        assert dead.hint == (f"start it again: mlctl pipeline run digits --dataset {dead.dataset} "
                             "(no --force needed: it did not succeed)")
        assert dead.steps["train"]["state"] == "failed" and dead.steps["fetch"]["state"] == "done"
        assert dead.finished_at
        for name in ("alive", "here", "elsewhere", "unrecorded"):
            assert pipelines.get_run(runs[name]).status == "running", name
        ended = [e for e in audit.entries() if e.action == "pipeline.run" and e.details.get("phase") == "finish"]
        assert [(e.actor, e.decision, e.details["run_id"], e.details["interrupted"]) for e in ended] == \
            [("mlctl-server", "deny", runs["dead"], True)]
        assert ended[0].reasons == [dead.error]

        # The truth through the server too, and it is not ended twice by the next start.
        shown = run_mlctl("pipeline", "status", runs["dead"], "-o", "json", in_process=True)
        assert shown.returncode == 0 and shown.json()["status"] == "failed", shown
        with running():
            pass
        assert len([e for e in audit.entries() if e.action == "pipeline.run"
                    and e.details.get("phase") == "finish"]) == 1
    finally:
        alive.kill()
        alive.wait()
