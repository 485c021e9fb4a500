"""Each kind of bad input stops the local KFP run at the step that owns it, with the cause and the
fix, a distinct exit code, and nothing registered."""

from __future__ import annotations

import json

import pytest

from control_plane.errors import DataTestFailed, EvaluationFailed, TrainingFailed
from tests.pipelines.conftest import pin
from tests.registry.conftest import run_cli


def _nothing_registered(*keep: str) -> None:
    from control_plane import registry

    assert [v.ref for v in registry.list_versions("digits")] == list(keep)


def _failed_run(step: str) -> dict:
    from control_plane.pipelines import list_runs

    (view,) = list_runs("digits")
    assert view.status == "failed" and view.failed_step == step and view.hint
    return view.to_dict()


def test_breaking_schema_change_stops_at_data_tests(datasets, pipeline_file, capsys):
    cfg = pipeline_file(grid={"C": [1.0], "max_iter": [300]})
    code, out, err = run_cli("pipeline", "run", "--config", str(cfg), "--dataset",
                             pin(datasets["schema-change"]), "--output", "json")
    assert code == 21, err
    error = json.loads(err[err.index("{"):])["error"]  # under --output json, errors are JSON on stderr
    assert "px_10: missing" in error["message"] and "pixel_10: missing" in error["message"]
    assert error["kind"] == "DataTestFailed" and "--features digits-pixels@NEW" in error["hint"]
    payload = json.loads(out)
    assert payload["error"]["step"] == "data-tests" and payload["run"]["status"] == "failed"
    _failed_run("data-tests")
    _nothing_registered()


def test_pii_in_an_untagged_column_stops_at_data_tests(datasets, pipeline_file):
    from control_plane.pipelines import load_config, run

    cfg = load_config(None, path=pipeline_file(grid={"C": [1.0], "max_iter": [300]}))
    with pytest.raises(DataTestFailed) as exc:
        run(cfg, dataset=pin(datasets["pii"]))
    assert exc.value.step == "data-tests"
    assert "PII guard" in exc.value.message and "contact" in exc.value.message
    assert "user0@example.ae" not in exc.value.message  # kinds and places, never the values
    assert "pseudonymise" in (exc.value.hint or "")
    _failed_run("data-tests")
    _nothing_registered()


def test_failing_transformation_unit_test_stops_at_data_tests(datasets, pipeline_file, tmp_path):
    from control_plane.pipelines import load_config, run

    tests = tmp_path / "test_my_transforms.py"
    tests.write_text(
        "import os\nimport pandas as pd\nfrom control_plane.samples.pipeline.transforms import prepare\n\n\n"
        "def test_prepare_keeps_raw_intensities():\n"
        "    x, _ = prepare(pd.read_csv(os.environ['MLCTL_PIPELINE_DATA']))\n"
        "    assert x.max() > 1.0, 'pixels should stay in 0..16'\n"
    )
    cfg = load_config(None, path=pipeline_file(grid={"C": [1.0], "max_iter": [300]}, transforms_tests=str(tests)))
    with pytest.raises(DataTestFailed) as exc:
        run(cfg, dataset=pin(datasets["v1"]))
    assert "test_prepare_keeps_raw_intensities" in exc.value.message
    assert "transformation unit tests failed" in exc.value.message
    assert exc.value.exit_code == 21
    _failed_run("data-tests")
    _nothing_registered()


def test_training_error_stops_at_train(datasets, pipeline_file):
    from control_plane.pipelines import load_config, run

    cfg = load_config(None, path=pipeline_file(grid={"C": [-1.0], "max_iter": [300]}))
    with pytest.raises(TrainingFailed) as exc:
        run(cfg, dataset=pin(datasets["v1"]))
    assert exc.value.step == "train" and exc.value.exit_code == 22
    assert "'C': -1.0" in exc.value.message and "InvalidParameterError" in exc.value.message
    _failed_run("train")
    _nothing_registered()


def test_worse_than_baseline_stops_at_evaluate_after_a_parallel_grid(datasets, pipeline_file, tmp_path):
    from control_plane import registry
    from control_plane.pipelines import load_config, run
    from control_plane.samples import build_sample_model

    good = build_sample_model(tmp_path / "baseline", variant="v1")
    registry.register("digits", "1", good.path, code_commit="0" * 40)
    cfg = load_config(None, path=pipeline_file(grid={"C": [0.001, 0.002], "max_iter": [50]}, baseline="digits:1"))
    with pytest.raises(EvaluationFailed) as exc:
        run(cfg, dataset=pin(datasets["v1"]))
    assert exc.value.step == "evaluate" and exc.value.exit_code == 23
    assert "metrics.accuracy" in exc.value.message and "digits:1" in exc.value.message
    steps = _failed_run("evaluate")["steps"]
    a, b = steps["train-0"], steps["train-1"]
    assert a["started"] < b["finished"] and b["started"] < a["finished"], "the grid trained in parallel"
    _nothing_registered("digits:1")


def test_fetch_refuses_a_changed_dataset_and_foreign_buckets(datasets):
    from control_plane.errors import PipelineFailed
    from control_plane.pipelines import load_config
    from control_plane.pipelines.steps import fetch_dataset

    cfg = load_config("digits")
    wrong = f"{datasets['v1']}@sha256:{'0' * 64}"
    with pytest.raises(PipelineFailed) as exc:
        fetch_dataset(wrong, datasets["v1"].parent / "out", cfg)
    assert "the data changed since it was pinned" in exc.value.message and "sha256:" in (exc.value.hint or "")
    with pytest.raises(PipelineFailed) as exc:
        fetch_dataset(f"s3://somebody-elses-bucket/x.csv@sha256:{'0' * 64}", datasets["v1"].parent / "o", cfg)
    assert "not in environment uae-local's bucket" in exc.value.message
    with pytest.raises(PipelineFailed) as exc:
        fetch_dataset(f"dvc://repo/data@dvc:{'a' * 40}", datasets["v1"].parent / "o", cfg)
    assert "content digests only" in exc.value.message and "dvc get" in (exc.value.hint or "")


def test_retrain_required_events_for_the_model_are_found():
    from control_plane.events import emit
    from control_plane.pipelines import load_config
    from control_plane.pipelines.service import retrain_requests

    emit("retrain.required", "digits:1", {"production": {"model": "digits", "version": "1"},
                                          "changes": [{"kind": "dataset", "name": "s3://b/k", "available": "sha256:" + "2" * 64}]})
    emit("retrain.required", "other:1", {"production": {"model": "other", "version": "1"}, "changes": []})
    found = retrain_requests(load_config("digits"))
    assert [e["data"]["production"]["model"] for e in found] == ["digits"]
