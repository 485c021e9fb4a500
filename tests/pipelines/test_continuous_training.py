"""Acceptance: a new data set version in the environment's bucket (on the AWS emulator) starts
exactly one local KFP run, which registers a signed version whose lineage and provenance pin the
new digest and the run; the release gates accept it; watching again trains nothing."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.pipelines.conftest import BUCKET

KEY = "datasets/digits/train.csv"


def test_dataset_change_on_the_emulator_trains_once_and_registers_a_signed_version(bucket, datasets, tmp_path):
    from control_plane import registry
    from control_plane.pipelines import list_runs, load_config, run, watch_once
    from control_plane.pipelines.config import env_blueprint
    from control_plane.release import gates

    cfg = load_config("digits").model_copy(update={"grid": {"C": [1.0], "max_iter": [300]}})
    bucket.put_object(Bucket=BUCKET, Key=KEY, Body=datasets["v1"].read_bytes())
    adopted = watch_once(cfg, adopt=True)  # production was trained on v1: start watching from here
    assert not adopted.changed and adopted.observation["adopted"]

    v2 = datasets["v2"].read_bytes()
    put = bucket.put_object(Bucket=BUCKET, Key=KEY, Body=v2)
    second = watch_once(cfg)
    assert second.changed and second.run is not None and second.run.status == "succeeded"
    run_id = second.run.run_id
    assert second.run.registered == "digits:1"

    mv = registry.get_version("digits", "1")
    digest = hashlib.sha256(v2).hexdigest()
    (pinned,) = mv.lineage["datasets"]
    assert pinned["digest"] == {"sha256": digest}
    assert pinned["uri"] == f"s3://{BUCKET}/{KEY}?versionId={put['VersionId']}"
    assert mv.lineage["extra"]["pipeline"]["run_id"] == run_id
    assert mv.lineage["features"] == [{"name": "digits-pixels", "version": "1"}]
    assert mv.lineage["extra"]["feature_set"]["schema_sha256"]
    assert mv.lineage["params"] == {"C": 1.0, "max_iter": 300}
    assert mv.lineage["code"]["commit"] != "unknown"
    stmt = mv.provenance
    if isinstance(stmt, str):
        stmt = json.loads(stmt)
    run_details = stmt["predicate"]["runDetails"]
    assert run_details["metadata"]["invocationId"] == run_id
    assert run_details["builder"]["id"].endswith("/pipelines/digits@local")
    assert stmt["predicate"]["buildDefinition"]["buildType"].endswith("/pipeline-run/v1")
    assert {"name": "dataset", "uri": pinned["uri"], "digest": {"sha256": digest}} in \
        stmt["predicate"]["buildDefinition"]["resolvedDependencies"]

    # The release gates a release of digits:1 to uae-local would run, in order.
    local = env_blueprint("uae-local")
    verified = gates.verify_signature("digits", "1", tmp_path / "served", local)
    assert verified.digest == mv.root_digest
    gates.check_approvals("digits", "1", local)
    gates.check_residency(local, verified.storage_uri)

    again = watch_once(cfg)
    assert not again.changed and again.run is None
    by_hand = run(cfg, dataset=second.observation["dataset"], features="digits-pixels@1")
    assert by_hand.reused and by_hand.run_id == run_id
    assert len(list_runs("digits")) == 1
    assert [v.version for v in registry.list_versions("digits")] == ["1"]
    # KFP's workspace and task outputs are gone; the log and step states stay.
    from control_plane.settings import state_dir

    left = {p.name for p in (state_dir("pipelines", "runs") / run_id).iterdir()}
    assert left == {"run.log", "status"}
    from control_plane import audit

    runs = [e for e in audit.entries() if e.action == "pipeline.run" and e.details.get("run_id") == run_id]
    assert [e.details["phase"] for e in runs] == ["start", "finish"] and runs[0].actor == "eli"
    assert [e.action for e in audit.entries()].count("pipeline.watch") == 2  # the adoption and the change


def test_watch_is_rbac_checked_and_audited(bucket, datasets, monkeypatch):
    from control_plane import audit
    from control_plane.errors import PolicyViolation
    from control_plane.pipelines import list_runs, load_config
    from control_plane.services import Context, pipelines

    bucket.put_object(Bucket=BUCKET, Key=KEY, Body=datasets["v1"].read_bytes())
    monkeypatch.setenv("MLCTL_ACTOR", "dana")  # a data scientist registers, but may not run pipelines
    with pytest.raises(PolicyViolation) as exc:
        pipelines.watch(Context(), load_config("digits"))
    assert "pipeline.run" in exc.value.message
    assert list_runs() == []
    denied = [e for e in audit.entries() if e.action == "pipeline.run"]
    assert denied and denied[-1].decision == "deny" and denied[-1].actor == "dana"
