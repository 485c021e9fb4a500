"""`mlctl local up/down/status/traffic` and `mlctl monitor replay/serve-metrics` with MLCTL_SERVER,
over HTTPS with real tokens from the real OpenID provider: `local` acts on the *server's* embedded
environment (authorized on the verified identity, audited, dev tier only; the CA and the OpenID
provider the server stands on stay up), `local status` is the local view, `local traffic` is sent
from the server with bounded parameters, `monitor replay` re-delivers the server's dead letters, and
`monitor serve-metrics` points at the server's /metrics."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from control_plane import audit
from control_plane.audit.records import AuditEntry
from control_plane.drivers import gateway
from control_plane.emulator import aws as emulator
from control_plane.emulator import ca, processes
from control_plane.events import dead_letter_path, emit
from tests.cli_runner import run_mlctl
from tests.monitor.conftest import (
    Sink,
    http_sink,  # noqa: F401  (a fixture)
    write_events_config,
)
from tests.server.conftest import Api, both


@pytest.fixture()
def served(api: Api, monkeypatch: pytest.MonkeyPatch) -> Api:
    from control_plane.access.roles import write_assignments
    from tests.registry.conftest import ROLES

    write_assignments(ROLES)
    monkeypatch.setenv("MLCTL_SERVER", api.url)
    monkeypatch.setenv("MLCTL_EMULATOR_ENDPOINT", f"http://127.0.0.1:{processes.free_port()}")
    return api


def _local_entries(action: str) -> list[AuditEntry]:
    return [e for e in audit.entries() if e.action == action]


def test_a_non_admin_local_down_is_refused_with_reasons_audited_and_stops_nothing(served: Api) -> None:
    gw = gateway.up()  # something to stop: the server's gateway (nginx, a fraction of a second)
    try:
        served.oidc.login("eli")  # an ml-engineer
        r = run_mlctl("local", "down", "-o", "json", in_process=True)
        assert r.returncode == 4 and r.stdout == "", r
        err = json.loads(r.stderr.strip().splitlines()[-1])["error"]
        assert err["kind"] == "PolicyViolation"
        assert "actor 'eli' (roles: ml-engineer) lacks permission 'local.down' (granted to: platform-admin)" \
            in err["message"]
        # over HTTP: the same refusal is a 403 with the reasons
        resp = served.call("POST", "/v1/local/down", served.token("eli"), json={})
        assert resp.status_code == 403 and "lacks permission 'local.down'" in resp.json()["error"]["message"]
        assert gateway.status().running and processes.is_alive(gw.pid)  # nothing was stopped
        denied = _local_entries("local.down")
        assert [e.decision for e in denied] == ["deny", "deny"]
        assert all(e.actor == "eli" and e.details["identity"]["source"] == "verified" for e in denied)
        assert served.call("GET", "/v1/local").status_code == 401  # no token: not even the status
    finally:
        gateway.down()


def test_local_status_through_the_server_is_the_local_view(served: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    served.oidc.login("pat")
    monkeypatch.setenv("MLCTL_ACTOR", "pat")
    through, here = both(monkeypatch, served, "local", "status", "-o", "json")
    assert through.returncode == here.returncode == 0, through
    assert through.json() == here.json()
    assert through.json()["ca"]["certificate"] == str(ca.ca_cert_path())  # the server's CA (it serves TLS with it)
    assert not through.json()["emulator"]["running"] and not through.json()["gateway"]["running"]
    through, here = both(monkeypatch, served, "local", "status")
    assert through.stdout == here.stdout and "gateway at" in through.stdout


def test_an_admin_runs_the_servers_environment_up_and_down_and_the_identity_stays(
        served: Api, tmp_path: Path) -> None:
    served.oidc.login("pat")  # platform-admin
    try:
        up = run_mlctl("local", "up", "-o", "json", in_process=True)
        assert up.returncode == 0, up
        d = up.json()
        assert d["emulator"]["running"] and d["gateway"]["running"] and d["kept"] == ["ca", "oidc_provider"]
        assert emulator.status().running and gateway.status().pid == d["gateway"]["pid"]
        assert "starting the AWS emulator and the gateway on the server" in up.stderr
        allowed = _local_entries("local.up")[-1]
        assert (allowed.actor, allowed.decision) == ("pat", "allow")
        assert allowed.details["identity"]["source"] == "verified" and allowed.details["kept"] == ["ca", "oidc_provider"]

        # traffic from the server's gateway: no model server behind it, so each request is its 404
        csv = tmp_path / "rows.csv"
        csv.write_text("input_0,input_1,prediction\n0.1,0.2,1\n0.3,0.4,0\n")
        t = run_mlctl("local", "traffic", "digits", "--csv", str(csv), "--seconds", "1", "--rate", "5",
                      "-o", "json", in_process=True)
        assert t.returncode == 0, t
        sent = t.json()
        assert sent["url"] == f"{d['gateway']['url']}/v2/models/digits/infer"
        assert 3 <= sent["sent"] <= 6 and sent["ok"] == 0 and sum(sent["statuses"].values()) == sent["sent"]
        assert set(sent["statuses"]) == {"404"}
    finally:
        down = run_mlctl("local", "down", "-o", "json", in_process=True)
    assert down.returncode == 0, down
    d = down.json()
    assert d["emulator"]["stopped"] and d["gateway"]["stopped"] and d["kept"] == ["ca", "oidc_provider"]
    assert d["oidc_provider"]["stopped"] is False
    assert not emulator.status().running and not gateway.status().running
    assert ca.ca_cert_path().is_file()
    table = run_mlctl("local", "down", in_process=True, check=True)  # what stayed, in words
    assert "local CA and OpenID provider" in table.stdout and "left as they are" in table.stdout
    # the server still verifies tokens: its identity provider was not pulled from under it
    who = run_mlctl("whoami", "-o", "json", in_process=True, check=True).json()
    assert (who["actor"], who["source"]) == ("pat", "verified")
    assert [e.decision for e in _local_entries("local.down")] == ["allow", "allow"]


def test_through_the_server_local_is_dev_tier_only_and_bounded(served: Api, tmp_path: Path) -> None:
    served.oidc.login("pat")
    r = run_mlctl("local", "up", "--blueprint", "uae-prod-aws", in_process=True)  # by name: never a file here
    assert r.returncode == 4 and "uae-prod-aws is prod tier" in r.stderr and "dev-tier" in r.stderr, r
    assert not emulator.status().running and not gateway.status().running  # refused before anything started
    token = served.token("pat")
    resp = served.call("POST", "/v1/local/down", token, json={"env": "uae-prod-aws"})
    assert resp.status_code == 403 and "prod tier" in resp.json()["error"]["message"]
    refused = [(e.action, e.decision, e.details["tier"]) for e in audit.entries() if e.action.startswith("local.")]
    assert refused == [("local.up", "deny", "prod"), ("local.down", "deny", "prod")]
    for path in ("../../etc/passwd.yaml", "uae-local.yaml", "/tmp/x"):
        resp = served.call("POST", "/v1/local/up", token, json={"env": path})
        assert resp.status_code == 422 and "a blueprint name, not a path" in resp.json()["error"]["message"], path

    csv = tmp_path / "rows.csv"
    csv.write_text("input_0\n1.0\n")
    r = run_mlctl("local", "traffic", "digits", "--csv", str(csv), "--seconds", "600", in_process=True)
    assert r.returncode == 2 and "--seconds 600: through the server at most 120" in r.stderr, r
    for body, says in (({"rows": [[1.0]], "seconds": 600}, "seconds"), ({"rows": [[1.0]], "rate": 1000}, "rate"),
                       ({"rows": []}, "rows"), ({"rows": [[1.0] * 1001] * 1000}, "1,000,000 numbers")):
        resp = served.call("POST", "/v1/local/traffic/digits", token, json=body)
        assert resp.status_code == 422 and says in resp.json()["error"]["message"], (body.keys(), resp.text[:300])
    r = run_mlctl("local", "traffic", "digits", "--csv", str(tmp_path / "none.csv"), in_process=True)
    assert r.returncode == 6 and "no such file" in r.stderr  # the client reads the CSV, as locally


def test_monitor_replay_through_the_server_redelivers_its_dead_letters(
        served: Api, http_sink: Sink, mlctl_home: Path) -> None:  # noqa: F811
    down = f"http://127.0.0.1:{processes.free_port()}/hook"  # nothing listens there
    write_events_config(mlctl_home, [{"name": "hook", "url": down, "budget_s": 1, "max_attempts": 1}])
    emit("release.done", "svc", {"n": 7})
    assert dead_letter_path().exists()
    write_events_config(mlctl_home, [{"name": "hook", "url": http_sink.url}])  # the sink is back

    served.oidc.login("dana")
    r = run_mlctl("monitor", "replay", "-o", "json", in_process=True)
    assert r.returncode == 0, r
    assert r.json() == {"delivered": 1, "still_failing": 0, "unknown_sink": 0}
    [got] = http_sink.wait_for(1)
    assert json.loads(got["body"])["data"] == {"n": 7}
    assert not dead_letter_path().exists()
    assert served.call("POST", "/v1/events/replay").status_code == 401  # a verified identity, at least


def test_serve_metrics_under_a_server_points_at_its_metrics(served: Api) -> None:
    r = run_mlctl("monitor", "serve-metrics", "--port", "0", in_process=True)
    assert r.returncode == 2 and f"{served.url}/metrics" in r.stderr, r
    assert "serves this machine's metrics, never a server's" in r.stderr
    metrics = served.client.get("/metrics")
    assert metrics.status_code == 200 and "mlctl_api_requests_total" in metrics.text


def test_one_traffic_run_at_a_time_on_the_server(served: Api) -> None:
    gateway.up()
    try:
        token = served.token("dana")  # inference traffic needs no role, only a verified identity
        body = {"rows": [[0.5, 0.5]], "seconds": 2, "rate": 5}
        answers: list[tuple[int, dict[str, object]]] = []

        def send() -> None:
            r = served.call("POST", "/v1/local/traffic/digits", token, json=body)
            answers.append((r.status_code, r.json()))

        runs = [threading.Thread(target=send) for _ in range(2)]
        for t in runs:
            t.start()
            time.sleep(0.3)  # the first is sending (2 s) when the second arrives
        for t in runs:
            t.join()
        assert sorted(code for code, _ in answers) == [200, 409], answers
        refused = next(d for code, d in answers if code == 409)
        assert "another `mlctl local traffic` run is going on" in str(refused["error"])
    finally:
        gateway.down()
