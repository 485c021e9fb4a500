"""Retrain triggers: a newer data set / feature set (or a schema change) behind a production model
emits ``retrain.required`` with what changed; drift remediation carries the production pins."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from control_plane.events import read_event_log
from control_plane.monitor.production import production_versions
from control_plane.monitor.retrain import check_retrain_triggers, find_triggers, pins_dict
from control_plane.validate import infer_schema
from tests.cli_runner import run_mlctl

DS_OLD = f"s3://data/cards.parquet@sha256:{'a' * 64}"
DS_NEW = f"s3://data/cards.parquet@sha256:{'b' * 64}"


def _version(
    name: str,
    version: str,
    datasets: list[str],
    features: list[dict[str, str]],
    schema: dict | None = None,
    env: str | None = None,
) -> dict:
    lineage: dict = {"datasets": [{"ref": d} for d in datasets], "features": features}
    if schema is not None:
        lineage["schema"] = schema
    return {"name": name, "version": version, "lineage": lineage, "environment": env}


def test_newer_dataset_and_feature_set_trigger_retrain(mlctl_home: Path) -> None:
    prod = [
        _version("fraud", "3", [DS_OLD], [{"name": "customer", "version": "11"}], env="prod"),
        _version("churn", "7", ["s3://data/churn.parquet@sha256:" + "c" * 64], [], env="prod"),
    ]
    new = _version("fraud-candidate", "1", [DS_NEW], [{"name": "customer", "version": "12"}])
    events = check_retrain_triggers(new, prod)
    assert len(events) == 1  # churn pins nothing that moved
    [ev] = events
    assert ev["type"] == "ae.sovereign-mlops.retrain.required" and ev["subject"] == "fraud:3"
    changes = {(c["kind"], c["name"]): c for c in ev["data"]["changes"]}
    assert changes[("dataset", "s3://data/cards.parquet")]["available"] == f"sha256:{'b' * 64}"
    assert changes[("features", "customer")] == {
        "kind": "features",
        "name": "customer",
        "pinned": "11",
        "available": "12",
        "change": "new_version",
    }
    assert ev["data"]["production"]["datasets"] == [DS_OLD]  # what to retrain from, pinned
    assert ev["data"]["environment"] == "prod"
    assert [e["id"] for e in read_event_log()] == [ev["id"]]


def test_schema_change_on_the_same_pin_triggers_retrain() -> None:
    old_schema = infer_schema(pd.DataFrame({"amount": [1.0, 2.0], "channel": ["web", "atm"]}))
    new_schema = infer_schema(pd.DataFrame({"amount": [1.0, 2.0], "channel": ["web", "app"]}))
    prod = [_version("fraud", "3", [DS_OLD], [], schema=old_schema)]
    same = find_triggers(_version("x", "1", [DS_OLD], [], schema=old_schema), prod)
    assert same == []
    changed = find_triggers(_version("x", "1", [DS_OLD], [], schema=new_schema), prod)
    assert [c["change"] for c in changed[0]["changes"]] == ["schema"]


def test_unrelated_registration_triggers_nothing(mlctl_home: Path) -> None:
    prod = [_version("fraud", "3", [DS_OLD], [{"name": "customer", "version": "11"}])]
    assert check_retrain_triggers(_version("other", "1", ["s3://x/y.csv@sha256:" + "d" * 64], []), prod) == []
    # re-registering the production version itself is not news
    assert check_retrain_triggers(prod[0], prod) == []
    assert read_event_log() == []


@pytest.fixture()
def live_fraud(mlctl_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """fraud:3 registered with its pins and recorded live by the release engine's tables."""
    from control_plane import registry
    from control_plane.access.roles import write_assignments
    from control_plane.release.models import LiveServiceRow, ReleaseRow
    from control_plane.store import session_scope

    write_assignments({"eli": ["ml-engineer"]})
    monkeypatch.setenv("MLCTL_ACTOR", "eli")
    model_dir = tmp_path / "fraud"
    model_dir.mkdir()
    (model_dir / "model.onnx").write_bytes(b"weights")
    registry.register(
        "fraud", "3", model_dir, code_commit="abcdef1", datasets=[DS_OLD], features=["customer@11"]
    )
    now = "2026-11-27T10:00:00Z"
    with session_scope() as s:
        s.add(
            ReleaseRow(
                id="rel-1",
                service="fraud-svc",
                model_name="fraud",
                model_version="3",
                environment="uae-local",
                strategy="blue-green",
                state="DONE",
                colour="blue",
                config="{}",
                created_by="eli",
                created_at=now,
                updated_at=now,
            )
        )
        s.add(
            LiveServiceRow(
                service="fraud-svc",
                environment="uae-local",
                live_colour="blue",
                live_version="3",
                live_release_id="rel-1",
                updated_at=now,
            )
        )


def test_default_production_comes_from_the_release_engine(live_fraud: None) -> None:
    [live] = production_versions()
    assert (live.service, live.environment, live.name, live.version) == (
        "fraud-svc",
        "uae-local",
        "fraud",
        "3",
    )
    assert pins_dict(live.record) == {
        "model": "fraud",
        "version": "3",
        "datasets": [DS_OLD],
        "features": ["customer@11"],
    }
    events = check_retrain_triggers(
        {
            "name": "fraud",
            "version": "4",
            "lineage": {"datasets": [{"ref": DS_NEW}], "features": [{"name": "customer", "version": "11"}]},
        }
    )
    assert len(events) == 1 and events[0]["data"]["service"] == "fraud-svc"


def test_drift_remediation_retrain_carries_production_pins(live_fraud: None, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    pd.DataFrame({"amount": rng.normal(100, 10, 500)}).to_csv(tmp_path / "ref.csv", index=False)
    log = Path(__import__("os").environ["MLCTL_HOME"]) / "serving" / "fraud-svc" / "requests.jsonl"
    log.parent.mkdir(parents=True)
    # this log names no model version: the live version comes from the release engine
    log.write_text(
        "".join(
            json.dumps(
                {
                    "ts": "2026-11-27T10:00:00Z",
                    "inputs": {"amount": float(v)},
                    "outputs": {"prediction": int(v > 140)},
                }
            )
            + "\n"
            for v in rng.normal(150, 10, 300)
        )
    )
    out = run_mlctl(
        "monitor",
        "drift",
        "fraud-svc",
        "-r",
        str(tmp_path / "ref.csv"),
        "--remediate",
        "retrain",
        "-o",
        "json",
        in_process=True,
    )
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)
    assert payload["drifted_features"] == ["amount"] and (payload["model"], payload["version"]) == (
        "fraud",
        "3",
    )
    [ev] = [e for e in read_event_log() if e["type"].endswith("retrain.required")]
    assert ev["data"]["production"] == {
        "model": "fraud",
        "version": "3",
        "datasets": [DS_OLD],
        "features": ["customer@11"],
    }


def test_drift_remediation_rollback_without_previous_version_is_reported(
    live_fraud: None, tmp_path: Path
) -> None:
    rng = np.random.default_rng(1)
    pd.DataFrame({"amount": rng.normal(100, 10, 500)}).to_csv(tmp_path / "ref.csv", index=False)
    log = Path(__import__("os").environ["MLCTL_HOME"]) / "serving" / "fraud-svc" / "requests.jsonl"
    log.parent.mkdir(parents=True)
    log.write_text(
        "".join(json.dumps({"inputs": [{"amount": float(v)}]}) + "\n" for v in rng.normal(160, 10, 300))
    )
    out = run_mlctl(
        "monitor",
        "drift",
        "fraud-svc",
        "-r",
        str(tmp_path / "ref.csv"),
        "--remediate",
        "rollback",
        "-o",
        "json",
        in_process=True,
    )
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)
    rollback = next(a for a in payload["actions"] if a["action"] == "rollback")
    # the release engine was asked and answered: fraud-svc has no previous version to go back to
    assert rollback["ok"] is False and "no previous version" in rollback["error"]


def test_registration_emits_model_registered_and_the_retrain_subscriber_reacts(live_fraud: None, tmp_path: Path) -> None:
    """The registry knows no subscriber: it emits model.registered; the retrain triggers, wired by a
    composition root (``retrain_hook.subscribe()``), read the production pins and emit retrain.required."""
    from control_plane import events, registry
    from control_plane.monitor import retrain_hook

    newer = tmp_path / "fraud-4"
    newer.mkdir()
    (newer / "model.onnx").write_bytes(b"weights v4")
    key = events.TYPE_PREFIX + "model.registered"
    before = list(events._subscribers.get(key, []))  # another test's composition root may have wired it
    events._subscribers[key] = []
    try:
        retrain_hook.subscribe()
        retrain_hook.subscribe()  # idempotent: one reaction per registration
        registry.register("fraud", "4", newer, code_commit="abcdef2", datasets=[DS_NEW], features=["customer@11"])
    finally:
        events._subscribers[key] = []
    log = read_event_log()
    [registered] = [e for e in log if e["type"] == "ae.sovereign-mlops.model.registered" and e["subject"] == "fraud:4"]
    assert registered["data"]["datasets"] == [DS_NEW] and registered["data"]["features"] == ["customer@11"]
    retrains = [e for e in log if e["type"] == "ae.sovereign-mlops.retrain.required"]
    assert len(retrains) == 1 and retrains[0]["subject"] == "fraud:3"
    assert retrains[0]["data"]["service"] == "fraud-svc" and retrains[0]["data"]["triggered_by"] == {
        "model": "fraud", "version": "4"}
    assert log.index(registered) < log.index(retrains[0])  # the announcement, then the reaction

    # without a subscriber (a process no composition root wired), registering triggers nothing
    other = tmp_path / "fraud-5"
    other.mkdir()
    (other / "model.onnx").write_bytes(b"weights v5")
    try:
        registry.register("fraud", "5", other, code_commit="abcdef3", datasets=[DS_NEW], features=["customer@11"])
    finally:
        events._subscribers[key] = before
    assert len([e for e in read_event_log() if e["type"].endswith("retrain.required")]) == 1


def test_the_retrain_subscriber_ignores_a_registration_event_it_cannot_act_on(mlctl_home: Path) -> None:
    """Subscribed for the whole process (the CLI root and the services wire it), it must never fail
    another emitter's ``model.registered`` event that names no model (the suite's CI run caught it)."""
    from control_plane.events import emit
    from control_plane.monitor import retrain_hook

    retrain_hook.subscribe()
    emit("model.registered", "fraud:3", {"version": "3"})  # no "model": nothing to check, no error
