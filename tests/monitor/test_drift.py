"""Drift detection on real data (scikit-learn's bundled data sets) with injected shifts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_digits

from control_plane.errors import MlctlError
from control_plane.events import read_event_log
from control_plane.monitor.drift import DriftConfig, FeatureRule, Thresholds, compare, load_config
from control_plane.monitor.request_log import log_path, read_requests
from tests.cli_runner import run_mlctl


def _split(frame: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two disjoint random halves: the data sets are sorted by class, so order is not random."""
    idx = np.random.default_rng(seed).permutation(len(frame))
    half = len(frame) // 2
    return frame.iloc[idx[:half]].reset_index(drop=True), frame.iloc[idx[half:]].reset_index(drop=True)


def _cancer() -> pd.DataFrame:
    frame = load_breast_cancer(as_frame=True).frame
    # a real categorical feature derived from a real measurement: tumour size band
    frame["size_band"] = pd.qcut(frame["mean area"], 4, labels=["s", "m", "l", "xl"]).astype(str)
    return frame


def test_injected_numeric_shifts_are_found_and_only_there() -> None:
    ref, cur = _split(_cancer(), seed=11)
    shifted = {"mean radius", "worst texture", "mean smoothness"}
    cur["mean radius"] += 0.75 * ref["mean radius"].std()
    cur["worst texture"] += 0.75 * ref["worst texture"].std()
    cur["mean smoothness"] *= 1.25
    report = compare(ref, cur)
    found = {f.name for f in report.drifted_features}
    assert found == shifted
    radius = next(f for f in report.features if f.name == "mean radius")
    assert radius.kind == "numeric" and radius.scores["ks_p_value"] < 1e-4
    assert radius.scores["psi"] > 0.2 and radius.scores["ks_statistic"] > 0.1


def test_injected_categorical_shift_is_found() -> None:
    ref, cur = _split(_cancer(), seed=5)
    # drop most of the small tumours from the current window: a population change
    small = cur.index[cur["size_band"] == "s"]
    cur = cur.drop(small[: int(0.8 * len(small))]).reset_index(drop=True)
    report = compare(ref, cur)
    band = next(f for f in report.features if f.name == "size_band")
    assert band.kind == "categorical" and band.drifted
    assert band.scores["js_distance"] > 0.1 and band.scores["chi2_p_value"] < 1e-3
    # a brand-new category is drift too
    ref2, cur2 = _split(_cancer(), seed=6)
    cur2.loc[: len(cur2) // 3, "size_band"] = "unknown"
    band2 = next(f for f in compare(ref2, cur2).features if f.name == "size_band")
    assert band2.drifted and band2.scores["new_categories"] == 1


def test_prediction_drift_from_a_real_model() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = load_breast_cancer(as_frame=True).frame
    features = frame.drop(columns=["target"])
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(features, frame["target"])
    ref, cur = _split(features, seed=3)
    ref["prediction"] = clf.predict(ref)
    # the current window: larger tumours on three size measures; the model's predictions move with them
    for col in ("worst radius", "worst perimeter", "worst area"):
        cur[col] += 2.0 * ref[col].std()
    cur["prediction"] = clf.predict(cur)
    report = compare(ref, cur)
    assert report.prediction is not None and report.prediction.drifted
    assert {"worst radius", "worst perimeter", "worst area"} <= {f.name for f in report.drifted_features}
    assert report.to_dict()["prediction_drift"] is True


def _false_positive_rate(frame: pd.DataFrame, resamples: int) -> tuple[float, int]:
    alarms = features = 0
    for seed in range(resamples):
        ref, cur = _split(frame, seed=1000 + seed)
        report = compare(ref, cur)
        alarms += report.drift_detected
        features += len(report.drifted_features)
    return alarms / resamples, features


@pytest.mark.parametrize(
    ("name", "loader"), [("breast_cancer", _cancer), ("digits", lambda: load_digits(as_frame=True).frame)]
)
def test_false_positive_rate_over_unshifted_resamples(name: str, loader, capsys) -> None:
    frame = loader()
    rate, features = _false_positive_rate(frame, resamples=50)
    with capsys.disabled():
        print(
            f"\n[drift] false-positive rate on {name} ({frame.shape[1]} columns), 50 unshifted random "
            f"half/half resamples: {rate:.2%} of checks alarmed ({features} feature alarms in total)"
        )
    # the family-wise significance is 1% (Bonferroni over the features) and an effect size is also
    # required, so alarms on unshifted data must be rare
    assert rate <= 0.06


def test_per_feature_thresholds_and_ignore(tmp_path: Path) -> None:
    ref, cur = _split(_cancer(), seed=21)
    cur["mean texture"] += 0.6 * ref["mean texture"].std()  # drifts under the defaults
    cur["mean radius"] += 2 * ref["mean radius"].std()  # a big shift, on a feature to be ignored
    assert {"mean texture", "mean radius"} <= {f.name for f in compare(ref, cur).drifted_features}
    cfg_file = tmp_path / "drift.yaml"
    cfg_file.write_text(
        "features:\n"
        "  mean texture: {psi: 5.0, ks_statistic: 0.9}\n"  # a feature known to be volatile: loosened
        "  mean radius: {ignore: true}\n"
        "remediation: none\n"
    )
    cfg = load_config(cfg_file)
    report = compare(ref, cur, cfg)
    names = {f.name for f in report.drifted_features}
    assert "mean texture" not in names and "mean radius" not in names
    texture = next(f for f in report.features if f.name == "mean texture")
    assert texture.thresholds["psi"] == 5.0 and texture.scores["psi"] > 0.2
    assert {"feature": "mean radius", "reason": "ignored by config"} in report.skipped
    assert cfg.remediation == "none"
    # a flag overrides the defaults (tighter PSI makes a milder shift count)
    assert load_config(None, psi=0.05).defaults.psi == 0.05


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("defaults: {psi: abc}\n", "defaults.psi"),
        ("features: {x: {type: ordinal}}\n", "features.x.type"),
        ("remediation: reboot\n", "remediation"),
        ("thresholds: {}\n", "unknown key"),
    ],
)
def test_bad_config_names_the_field(tmp_path: Path, text: str, needle: str) -> None:
    cfg_file = tmp_path / "drift.yaml"
    cfg_file.write_text(text)
    with pytest.raises(MlctlError) as err:
        load_config(cfg_file)
    assert needle in err.value.message and err.value.hint


def test_cli_files_csv_parquet_json_and_fail_on_drift(tmp_path: Path, mlctl_home: Path) -> None:
    ref, cur = _split(_cancer(), seed=8)
    ref.to_csv(tmp_path / "ref.csv", index=False)
    same = cur.copy()
    same.to_parquet(tmp_path / "same.parquet")
    cur["worst area"] *= 1.5
    cur.to_parquet(tmp_path / "cur.parquet")

    ok = run_mlctl(
        "monitor",
        "drift",
        "-r",
        str(tmp_path / "ref.csv"),
        "-c",
        str(tmp_path / "same.parquet"),
        "--fail-on-drift",
        "-o",
        "json",
        in_process=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["drift_detected"] is False

    bad = run_mlctl(
        "monitor",
        "drift",
        "-r",
        str(tmp_path / "ref.csv"),
        "-c",
        str(tmp_path / "cur.parquet"),
        "--fail-on-drift",
        "-o",
        "json",
        in_process=True,
    )
    assert bad.returncode == 5, bad.stderr
    payload = json.loads(bad.stdout)
    assert payload["drifted_features"] == ["worst area"]
    area = next(f for f in payload["features"] if f["name"] == "worst area")
    assert area["drifted"] and set(area["scores"]) >= {"psi", "ks_statistic", "ks_p_value"}
    # under --output json the error is JSON on stderr too (issue 15), with its fix
    assert json.loads(bad.stderr)["error"]["hint"] and "Traceback" not in bad.stderr

    human = run_mlctl("monitor", "drift", "-r", str(tmp_path / "ref.csv"), "-c", str(tmp_path / "cur.parquet"), in_process=True)
    assert human.returncode == 0 and "DRIFT" in human.stdout and "worst area" in human.stdout

    # audited and emitted
    types = [e["type"].rsplit(".", 2)[-2:] for e in read_event_log()]
    assert ["drift", "checked"] in types and ["drift", "detected"] in types
    from control_plane import audit

    drift_entries = [e for e in audit.entries() if e.action == "monitor.drift"]
    assert [e.decision for e in drift_entries] == ["allow", "deny", "deny"]


def test_cli_errors_are_clear(tmp_path: Path) -> None:
    # once through the real console entry point, in its own process
    missing = run_mlctl(
        "monitor", "drift", "-r", str(tmp_path / "nope.csv"), "-c", str(tmp_path / "nope2.csv"), timeout=180
    )
    assert (
        missing.returncode == 6 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    )
    (tmp_path / "a.csv").write_text("x,y\n1,2\n")
    (tmp_path / "b.csv").write_text("p,q\n1,2\n")
    disjoint = run_mlctl("monitor", "drift", "-r", str(tmp_path / "a.csv"), "-c", str(tmp_path / "b.csv"), in_process=True)
    assert disjoint.returncode == 2 and "share no column" in disjoint.stderr
    both = run_mlctl("monitor", "drift", "svc", "-r", str(tmp_path / "a.csv"), "-c", str(tmp_path / "b.csv"), in_process=True)
    assert both.returncode == 2 and "exactly one" in both.stderr
    (tmp_path / "c.txt").write_text("x")
    fmt = run_mlctl("monitor", "drift", "-r", str(tmp_path / "c.txt"), "-c", str(tmp_path / "a.csv"), in_process=True)
    assert fmt.returncode == 2 and ".csv, .parquet or .jsonl" in fmt.stderr


def test_reference_and_current_from_s3(tmp_path: Path, aws_emulator: str) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=aws_emulator, region_name="me-central-1")
    bucket = "drift-data-test"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "me-central-1"})
    ref, cur = _split(_cancer(), seed=9)
    cur["mean concavity"] *= 1.8
    s3.put_object(Bucket=bucket, Key="ref/train.csv", Body=ref.to_csv(index=False).encode())
    cur.to_parquet(tmp_path / "cur.parquet")
    s3.put_object(Bucket=bucket, Key="live/cur.parquet", Body=(tmp_path / "cur.parquet").read_bytes())
    out = run_mlctl(
        "monitor",
        "drift",
        "-r",
        f"s3://{bucket}/ref/train.csv",
        "-c",
        f"s3://{bucket}/live/cur.parquet",
        "-o",
        "json",
        in_process=True,
    )
    assert out.returncode == 0, out.stderr
    assert "mean concavity" in json.loads(out.stdout)["drifted_features"]
    gone = run_mlctl("monitor", "drift", "-r", f"s3://{bucket}/nope.csv", "-c", f"s3://{bucket}/live/cur.parquet", in_process=True)
    assert gone.returncode == 6 and "does not exist" in gone.stderr


def _write_v2_log(service: str, x: np.ndarray, probs: np.ndarray, *, model: str, version: str) -> None:
    """What the local model server writes: one V2 request/response pair per line."""
    path = log_path(service)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        for i in range(0, len(x), 4):  # batches of four rows
            batch, pb = x[i : i + 4], probs[i : i + 4]
            fh.write(
                json.dumps(
                    {
                        "ts": "2026-11-27T10:00:00Z",
                        "service": service,
                        "model": model,
                        "version": version,
                        "inputs": [
                            {
                                "name": "input",
                                "shape": list(batch.shape),
                                "datatype": "FP32",
                                "data": batch.ravel().tolist(),
                            }
                        ],
                        "outputs": [
                            {
                                "name": "probabilities",
                                "shape": list(pb.shape),
                                "datatype": "FP32",
                                "data": pb.ravel().tolist(),
                            }
                        ],
                    }
                )
                + "\n"
            )
        fh.write('{"ts": "2026-11-27T10:00:01Z", "inputs": [tor\n')  # a line being written right now


def test_service_mode_reads_the_request_log(tmp_path: Path, mlctl_home: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from control_plane.access.roles import write_assignments
    from control_plane.samples.digits import build_sample_model

    # --remediate retrain changes what happens downstream: monitor.drift (ml-engineer, rbac.rego)
    write_assignments({"eli": ["ml-engineer"]})
    monkeypatch.setenv("MLCTL_ACTOR", "eli")
    from control_plane.validate.model import OnnxClassifier

    sample = build_sample_model(tmp_path / "model")
    model = OnnxClassifier.load(sample.path)
    x, _ = sample.eval_set()
    labels, probs = model.run(x)
    assert probs is not None
    ref = pd.DataFrame(x, columns=[f"input_{j}" for j in range(x.shape[1])])
    ref["prediction"] = labels
    ref.to_csv(tmp_path / "reference.csv", index=False)

    # live traffic: mostly 0s and 1s (a population change), and brighter images
    keep = np.isin(labels, [0, 1])
    live = np.clip(x[keep] * 1.4, 0, 1)
    live_labels, live_probs = model.run(live)
    assert live_probs is not None
    _write_v2_log("digits-svc", live, live_probs, model="digits", version="3")

    window = read_requests("digits-svc")
    assert window.bad_lines == 1 and (window.model, window.version) == ("digits", "3")
    assert len(window.frame) == int(keep.sum()) and "input_63" in window.frame.columns
    assert (window.frame["prediction"].to_numpy() == live_labels).all()

    out = run_mlctl(
        "monitor",
        "drift",
        "digits-svc",
        "-r",
        str(tmp_path / "reference.csv"),
        "--remediate",
        "retrain",
        "-o",
        "json",
        in_process=True,
    )
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)
    assert payload["drift_detected"] and payload["prediction_drift"] is True
    assert (payload["model"], payload["version"]) == ("digits", "3")
    retrain = [e for e in read_event_log() if e["type"].endswith("retrain.required")]
    assert len(retrain) == 1 and retrain[0]["data"]["reason"] == "drift"
    assert retrain[0]["data"]["production"]["model"] == "digits"
    # digits:3 was never registered here: the event says so instead of inventing pins
    assert retrain[0]["data"]["production"]["datasets"] == [] and "note" in retrain[0]["data"]["production"]

    # the same service with a window that looks like the reference: no drift
    log_path("digits-svc").unlink()
    _write_v2_log("digits-svc", x, probs, model="digits", version="3")
    calm = run_mlctl(
        "monitor",
        "drift",
        "digits-svc",
        "-r",
        str(tmp_path / "reference.csv"),
        "--last",
        "400",
        "--fail-on-drift",
        "-o",
        "json",
        in_process=True,
    )
    assert calm.returncode == 0, calm.stdout[-2000:] + calm.stderr
    assert json.loads(calm.stdout)["n_current"] == 400


def test_service_without_log_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "r.csv").write_text("a\n1\n")
    out = run_mlctl("monitor", "drift", "ghost", "-r", str(tmp_path / "r.csv"), in_process=True)
    assert out.returncode == 6 and "no request log" in out.stderr and "fix:" in out.stderr


def test_explicit_feature_types() -> None:
    ref, cur = _split(_cancer(), seed=2)
    cfg = DriftConfig(features={"target": FeatureRule(kind="numeric", thresholds=Thresholds())})
    target = next(f for f in compare(ref, cur, cfg).features if f.name == "target")
    assert target.kind == "numeric"
    assert next(f for f in compare(ref, cur).features if f.name == "target").kind == "categorical"


def test_request_window_since_and_last(mlctl_home: Path) -> None:
    from datetime import UTC, datetime

    path = log_path("svc")
    path.parent.mkdir(parents=True)
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    lines = [{"ts": "2020-01-01T00:00:00Z", "inputs": {"x": 1.0}, "outputs": {"prediction": 0}}]
    lines += [
        {"ts": now, "inputs": [{"x": float(i)}, {"x": float(i) + 0.5}], "outputs": [1, 0]} for i in range(5)
    ]
    path.write_text("".join(json.dumps(rec) + "\n" for rec in lines))
    assert len(read_requests("svc").frame) == 11
    recent = read_requests("svc", since="1h").frame
    assert len(recent) == 10 and list(recent["prediction"][:2]) == [1, 0]
    assert list(read_requests("svc", last=3).frame["x"]) == [3.5, 4.0, 4.5]
    with pytest.raises(MlctlError) as err:
        read_requests("svc", since="yesterday")
    assert "--since" in err.value.message
