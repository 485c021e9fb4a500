"""The validation gate on real ONNX models: the good one passes, a degraded one is blocked on
metrics, a fragile one fails robustness; data checks against the registered schema."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from control_plane.events import read_event_log
from control_plane.validate import Candidate, ValidationPolicy, check_schema, infer_schema, validate_paths
from tests.cli_runner import run_mlctl
from tests.monitor.models import build_degraded, build_fragile, build_good


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {
        "good": build_good(root / "good", "v1"),
        "good2": build_good(root / "good2", "v2"),
        "degraded": build_degraded(root / "degraded"),
        "fragile": build_fragile(root / "fragile"),
    }


def _checks(report) -> dict[str, str]:
    return {c.name: c.status for c in report.checks}


def test_good_model_passes_against_an_equal_baseline(models: dict[str, Path]) -> None:
    report = validate_paths(Candidate("digits:2", models["good2"]), Candidate("digits:1", models["good"]))
    assert report.passed, [(c.name, c.detail) for c in report.failed]
    checks = _checks(report)
    assert checks["metrics.accuracy"] == "pass" and checks["robustness.stability"] == "pass"
    assert checks["robustness.fgsm"] == "pass"  # a logistic regression is smooth: FGSM applies
    assert report.metrics["accuracy"] > 0.9


def test_degraded_model_is_blocked_on_metrics(models: dict[str, Path]) -> None:
    report = validate_paths(Candidate("digits:3", models["degraded"]), Candidate("digits:1", models["good"]))
    assert not report.passed
    checks = _checks(report)
    assert checks["metrics.accuracy"] == "fail" and checks["metrics.f1_macro"] == "fail"
    assert report.metrics["accuracy"] < report.baseline_metrics["accuracy"] - 0.05


def test_fragile_model_fails_robustness_with_clean_accuracy_intact(models: dict[str, Path]) -> None:
    report = validate_paths(Candidate("digits:4", models["fragile"]), Candidate("digits:1", models["good"]))
    checks = _checks(report)
    # as accurate as the good model on clean data, so metrics alone would let it through ...
    assert checks["metrics.accuracy"] == "pass"
    # ... but its labels flip under noise of 1% of the pixel range
    assert checks["robustness.stability"] == "fail"
    stability = next(c for c in report.checks if c.name == "robustness.stability")
    assert stability.value is not None and stability.value < 0.5
    assert not report.passed


def test_no_baseline_skips_comparison_but_floor_applies(models: dict[str, Path]) -> None:
    report = validate_paths(Candidate("digits:1", models["good"]))
    assert _checks(report)["metrics.accuracy"] == "skip" and report.passed
    floored = validate_paths(
        Candidate("digits:3", models["degraded"]), policy=ValidationPolicy(min_accuracy=0.9)
    )
    assert _checks(floored)["metrics.accuracy"] == "fail"


def test_schema_inference_and_checks() -> None:
    frame = pd.DataFrame(
        {
            "amount": [10.0, 250.5, 99.0, np.nan],
            "channel": ["web", "branch", "web", "atm"],
            "age": [31, 45, 27, 60],
            "flag": [True, False, True, True],
        }
    )
    schema = infer_schema(frame)
    assert schema["columns"]["amount"] == {"type": "float", "nullable": True, "min": 10.0, "max": 250.5}
    assert schema["columns"]["channel"]["categories"] == ["atm", "branch", "web"]
    assert schema["columns"]["age"]["type"] == "int" and schema["columns"]["flag"]["type"] == "bool"
    json.dumps(schema)  # JSON-ready: the registry stores it as is
    assert check_schema(frame, schema) == []

    bad = pd.DataFrame(
        {
            "amount": [10.0, 1e6, 5.0, 7.0],  # out of range
            "channel": ["web", "crypto", "web", None],  # unseen category, and a null
            "age": ["31", "x", "27", "60"],  # wrong type
        }
    )
    found = {(v.column, v.check) for v in check_schema(bad, schema)}
    assert found == {
        ("amount", "range"),
        ("channel", "category"),
        ("channel", "nulls"),
        ("age", "type"),
        ("flag", "missing"),
    }
    assert all("crypto" not in v.detail for v in check_schema(bad, schema))  # counts, never values
    arr_schema = infer_schema(np.zeros((3, 2)))
    assert list(arr_schema["columns"]) == ["x_0", "x_1"]


def test_schema_violation_fails_the_gate(models: dict[str, Path], tmp_path: Path) -> None:
    with np.load(models["good"] / "eval.npz") as z:
        x, y = z["X"], z["y"]
    schema = infer_schema(x)
    shifted = tmp_path / "eval.npz"
    with shifted.open("wb") as fh:
        np.savez(fh, X=np.clip(x * 3.0, 0, 3.0), y=y)  # pixels now 0..3: outside the recorded 0..1
    report = validate_paths(Candidate("digits:1", models["good"], eval_path=shifted, schema=schema))
    assert _checks(report)["data.schema"] == "fail"
    ok = validate_paths(Candidate("digits:1", models["good"], schema=schema))
    assert _checks(ok)["data.schema"] == "pass"


def test_cli_by_path_reports_audits_and_emits(models: dict[str, Path], mlctl_home: Path) -> None:
    good = run_mlctl(
        "model", "validate",
        "--model-dir",
        str(models["good2"]),
        "--baseline-dir",
        str(models["good"]),
        "-o",
        "json",
        in_process=True,
    )
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["decision"] == "pass"
    bad = run_mlctl(
        "model", "validate", "--model-dir", str(models["degraded"]), "--baseline-dir", str(models["good"]), in_process=True
    )
    assert bad.returncode == 4
    assert "FAIL" in bad.stdout and "metrics.accuracy" in bad.stderr and "fix:" in bad.stderr
    assert "Traceback" not in bad.stderr
    from control_plane import audit

    decisions = [e.decision for e in audit.entries() if e.action == "model.validate"]
    assert decisions == ["allow", "deny"]
    gates = [e["data"] for e in read_event_log() if e["type"].endswith("gate.decided")]
    assert [(g["gate"], g["decision"]) for g in gates] == [("validation", "allow"), ("validation", "deny")]


@pytest.fixture()
def registered(models: dict[str, Path], mlctl_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from control_plane import registry
    from control_plane.access.roles import write_assignments

    write_assignments({"eli": ["ml-engineer"]})
    monkeypatch.setenv("MLCTL_ACTOR", "eli")
    for version, key in (("1", "good"), ("2", "good2"), ("3", "degraded"), ("4", "fragile")):
        registry.register(
            "digits",
            version,
            models[key],
            code_commit="abcdef1",
            datasets=[f"s3://data/digits.parquet@sha256:{'a' * 64}"],
            features=["pixels@1"],
        )


def test_validate_version_through_the_registry(registered: None) -> None:
    from control_plane.validate import validate_version

    assert validate_version("digits", "2", "uae-local", baseline="digits:1").passed
    assert not validate_version("digits", "3", "uae-local", baseline="digits:1").passed
    fragile = validate_version("digits", "4", "uae-local", baseline="digits:1")
    assert _checks(fragile)["robustness.stability"] == "fail"
    # nothing is in production in this environment yet: no baseline, metrics comparison skipped
    first = validate_version("digits", "1", "uae-local")
    assert first.baseline is None and _checks(first)["metrics.accuracy"] == "skip"


def test_cli_validate_registered_version(registered: None) -> None:
    out = run_mlctl(
        "model", "validate", "digits:3", "--env", "uae-local", "--baseline", "digits:1", "-o", "json", in_process=True
    )
    assert out.returncode == 4
    assert json.loads(out.stdout)["decision"] == "fail"
    missing = run_mlctl("model", "validate", "digits:9", "--env", "uae-local", in_process=True)
    assert missing.returncode == 6 and "fix:" in missing.stderr
    no_env = run_mlctl("model", "validate", "digits:1", in_process=True)
    assert no_env.returncode == 2 and "--env" in no_env.stderr
