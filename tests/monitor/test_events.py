"""Events reach a real HTTP sink; a sink that is down never blocks and its events are dead-lettered."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from cloudevents.http import from_http

from control_plane.emulator.processes import free_port
from control_plane.errors import MlctlError
from control_plane.events import dead_letter_path, emit, event_log_path, read_event_log
from control_plane.events.replay import replay
from tests.monitor.conftest import Sink, body_json, write_events_config


def test_no_sinks_appends_to_local_log_only(mlctl_home: Path) -> None:
    out = emit("release.switched", "fraud-svc", {"from": "blue", "to": "green"})
    assert out.results == ()
    [event] = read_event_log()
    assert event["type"] == "ae.sovereign-mlops.release.switched"
    assert event["source"].startswith("mlctl/")
    assert event["specversion"] == "1.0" and event["subject"] == "fraud-svc"
    assert event["data"] == {"from": "blue", "to": "green"}
    assert oct(event_log_path().stat().st_mode & 0o777) == "0o600"


def test_webhook_and_cloudevents_sinks_receive_events(mlctl_home: Path, http_sink: Sink) -> None:
    write_events_config(
        mlctl_home,
        [
            {"name": "hook", "kind": "webhook", "url": http_sink.url},
            {"name": "broker", "kind": "cloudevents", "url": http_sink.url + "/ce", "types": ["release.*"]},
        ],
    )
    emit("release.switched", "fraud-svc", {"version": "3"})
    emit("model.registered", "fraud:3", {"version": "3"})  # not for the broker (type filter)
    got = http_sink.wait_for(3)
    assert len(got) == 3
    hooks = [r for r in got if r["path"] == "/hook"]
    ces = [r for r in got if r["path"] == "/hook/ce"]
    assert [body_json(r)["type"] for r in hooks] == [
        "ae.sovereign-mlops.release.switched",
        "ae.sovereign-mlops.model.registered",
    ]
    assert hooks[0]["headers"]["content-type"] == "application/json"
    [ce] = ces
    assert ce["headers"]["content-type"].startswith("application/cloudevents+json")
    parsed = from_http(ce["headers"], ce["body"])  # the real CloudEvents SDK accepts what we sent
    assert parsed["type"] == "ae.sovereign-mlops.release.switched"
    assert parsed.data == {"version": "3"}
    assert not dead_letter_path().exists()


def test_secret_header_comes_from_env_and_stays_out_of_files(
    mlctl_home: Path, http_sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_TOKEN", "Bearer s3cr3t-token-value")
    write_events_config(
        mlctl_home,
        [{"name": "hook", "url": http_sink.url, "headers_from_env": {"Authorization": "HOOK_TOKEN"}}],
    )
    emit("release.done", "svc", {"password": "hunter2", "nested": {"api_key": "k-123"}})
    [req] = http_sink.wait_for(1)
    assert req["headers"]["authorization"] == "Bearer s3cr3t-token-value"
    body = req["body"].decode()
    assert "hunter2" not in body and "k-123" not in body and "[redacted:secret]" in body
    assert "s3cr3t" not in event_log_path().read_text()


def test_transient_failures_are_retried(mlctl_home: Path, http_sink: Sink) -> None:
    write_events_config(mlctl_home, [{"name": "hook", "url": http_sink.url, "max_attempts": 3}])
    http_sink.fail_next = 2
    out = emit("release.done", "svc", {})
    assert out.results[0].ok and out.results[0].attempts == 3
    assert len(http_sink.wait_for(1)) == 1
    assert not dead_letter_path().exists()


def test_sink_down_does_not_block_and_dead_letters(mlctl_home: Path, http_sink: Sink) -> None:
    down = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    write_events_config(
        mlctl_home, [{"name": "down", "url": down, "budget_s": 2}, {"name": "up", "url": http_sink.url}]
    )
    start = time.monotonic()
    for i in range(3):
        emit("release.green_applied", "svc", {"i": i})
    elapsed = time.monotonic() - start
    assert elapsed < 3 * 2 + 1, f"emit blocked for {elapsed:.1f}s"
    assert len(http_sink.wait_for(3)) == 3  # the healthy sink still got everything
    lines = [json.loads(x) for x in dead_letter_path().read_text().splitlines()]
    assert [d["event"]["data"]["i"] for d in lines] == [0, 1, 2]
    assert all(d["sink"] == "down" and d["attempts"] >= 1 and d["error"] for d in lines)
    assert len(read_event_log()) == 3  # and the local log has them all

    # the sink comes back (same config name, now pointing at a live server): replay drains the file
    write_events_config(mlctl_home, [{"name": "down", "url": http_sink.url}])
    res = replay()
    assert (res.delivered, res.still_failing) == (3, 0)
    assert not dead_letter_path().exists()  # drained (a new one appears with the next failure)
    assert len(http_sink.wait_for(6)) == 6


def test_required_sink_down_fails_with_fix(mlctl_home: Path) -> None:
    down = f"http://user:pw@127.0.0.1:{free_port()}/hook?token=abc"
    write_events_config(mlctl_home, [{"name": "pager", "url": down, "required": True, "budget_s": 1}])
    with pytest.raises(MlctlError) as err:
        emit("release.rolled_back", "svc", {})
    assert "pager" in err.value.message and err.value.hint
    dead = dead_letter_path().read_text()
    assert "ae.sovereign-mlops.release.rolled_back" in dead
    assert "pw@" not in dead and "token=abc" not in dead  # the URL is recorded without credentials


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        ({"sinks": [{"url": "ftp://x"}]}, "sinks[0].url"),
        ({"sinks": [{"url": "http://x", "kind": "kafka"}]}, "sinks[0].kind"),
        ({"sinks": [{"url": "http://x", "retries": 3}]}, "unknown field"),
        ({"sinks": "nope"}, "sinks"),
    ],
)
def test_bad_config_names_the_field(mlctl_home: Path, config: dict, needle: str) -> None:
    import yaml

    (mlctl_home / "events.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(MlctlError) as err:
        emit("x", "y", {})
    assert needle in err.value.message and err.value.hint


def test_replay_keeps_what_still_fails(mlctl_home: Path) -> None:
    down = f"http://127.0.0.1:{free_port()}/hook"
    write_events_config(mlctl_home, [{"name": "down", "url": down, "budget_s": 1, "max_attempts": 2}])
    emit("release.done", "svc", {"n": 1})
    res = replay()
    assert (res.delivered, res.still_failing, res.unknown_sink) == (0, 1, 0)
    [rec] = [json.loads(x) for x in dead_letter_path().read_text().splitlines()]
    assert rec["event"]["data"] == {"n": 1} and rec["attempts"] >= 2
    write_events_config(mlctl_home, [])  # the sink was removed from the config: kept, counted
    assert replay().unknown_sink == 1 and dead_letter_path().exists()
