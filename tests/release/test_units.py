"""Fast checks of the pure parts: the sample model, quantiles, verdicts, configuration."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest

from blueprints import load_environment
from control_plane.errors import MlctlError
from control_plane.release.analysis import Measurement, Thresholds, evaluate, quantile
from control_plane.release.config import ReleaseConfig
from control_plane.settings import BLUEPRINTS_DIR


def test_sample_model_is_a_real_onnx_classifier(samples):
    m = samples["v1"]
    sess = ort.InferenceSession(str(m.model_file), providers=["CPUExecutionProvider"])
    assert [(i.name, i.shape) for i in sess.get_inputs()] == [("input", [None, 64])]
    assert [o.name for o in sess.get_outputs()] == ["probabilities"]
    x, y = m.eval_set()
    probs = sess.run(None, {"input": x})[0]
    assert probs.shape == (len(x), 10)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    assert (probs.argmax(axis=1) == y).mean() > 0.9
    req = m.sample_request()["inputs"][0]
    assert req["shape"] == [1, 64] and req["datatype"] == "FP32" and len(req["data"]) == 64


def test_sample_variants_differ_and_misbehave_as_documented(samples):
    assert samples["v1"].model_file.read_bytes() != samples["v2"].model_file.read_bytes()
    with pytest.raises(Exception):  # noqa: B017 - onnxruntime raises its own exception types
        ort.InferenceSession(str(samples["broken"].model_file))
    sess = ort.InferenceSession(str(samples["bad-shape"].model_file))
    x, _ = samples["bad-shape"].eval_set()
    assert sess.run(None, {"input": x[:2]})[0].shape == (2, 9)
    card = json.loads((samples["bad-shape"].path / "model.json").read_text())
    assert card["outputs"][0]["shape"] == [-1, 10]  # the card promises what the model does not do


def test_quantile_interpolates_like_prometheus():
    buckets = {"0.01": 50.0, "0.1": 90.0, "1.0": 100.0, "+Inf": 100.0}
    assert quantile(0.5, buckets) == pytest.approx(0.01)
    assert quantile(0.95, buckets) == pytest.approx(0.1 + 0.9 * 0.5)
    assert quantile(0.95, {"+Inf": 0.0}) is None


def test_verdicts():
    t = Thresholds(max_error_rate=0.01, max_p95_seconds=0.1, min_requests=20)
    assert evaluate("x", Measurement(100, 0, 0.05), t).verdict == "pass"
    failed = evaluate("x", Measurement(100, 5, 0.05), t)
    assert failed.verdict == "fail" and "error rate" in failed.reasons[0]
    slow = evaluate("x", Measurement(100, 0, 0.2), t)
    assert slow.verdict == "fail" and "p95" in slow.reasons[0]
    few = evaluate("x", Measurement(3, 0, 0.01), t)
    assert few.verdict == "inconclusive" and "only 3 requests" in few.reasons[0]


def test_config_refuses_nonsense():
    with pytest.raises(MlctlError, match="canary steps"):
        ReleaseConfig(canary_steps=(50, 10))
    with pytest.raises(MlctlError, match="must not be negative"):
        ReleaseConfig(analysis_window=-1)
    cfg = ReleaseConfig(strategy="canary", canary_steps=(5, 50))
    assert ReleaseConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_no_tier_is_guessed_from_a_name():
    """The approval tier comes only from the blueprint's `tier:`; nothing in the control plane or
    the policies looks at an environment's name to decide it."""
    import re

    from control_plane.settings import POLICIES_DIR, PROJECT_ROOT

    guessing = re.compile(r"""["'](prod|staging|stg|dev)["']\s+(not\s+)?in\s+\w*name|\bname\b.*\bcontains\b""")
    sources = [*(PROJECT_ROOT / "control_plane").rglob("*.py"), *POLICIES_DIR.glob("*.rego")]
    offenders = [f"{p}:{i}" for p in sources for i, line in enumerate(p.read_text().splitlines(), 1)
                 if guessing.search(line)]
    assert offenders == []
    assert load_environment(BLUEPRINTS_DIR / "uae-local.yaml").tier == "dev"
    assert load_environment(BLUEPRINTS_DIR / "uae-prod-aws.yaml").tier == "prod"


def test_service_names_must_be_dns_labels():
    from control_plane.drivers.local import LocalDriver
    from control_plane.release import Engine

    with pytest.raises(MlctlError, match="not a DNS label"):
        Engine(LocalDriver()).start(
            model_name="Fraud_Model", version="1", env_name="uae-local", config=ReleaseConfig()
        )
