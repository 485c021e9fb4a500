"""Deliberately bad models for the validation gate's tests, built from the real digits sample.

- ``build_degraded``: the same logistic regression trained with 70% of its labels shuffled —
  a plausible "bad training run" that still exports and serves fine.
- ``build_fragile``: the good model's logits plus a term that is zero on the 1/16 grid the digits
  pixels live on and huge a hair off it, so predictions flip under tiny perturbations while clean
  accuracy is unchanged (a model that has latched onto an artefact of its inputs).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from control_plane.samples.digits import (
    INPUT_NAME,
    N_FEATURES,
    OUTPUT_NAME,
    _split,
    _to_onnx,
    build_sample_model,
)


def _write(out_dir: Path, model_bytes: bytes, x_te: np.ndarray, y_te: np.ndarray, variant: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "model.onnx").write_bytes(model_bytes)
    with (out_dir / "eval.npz").open("wb") as fh:
        np.savez(fh, X=x_te, y=y_te)
    (out_dir / "model.json").write_text(json.dumps({"name": "digits", "variant": variant}))
    return out_dir


def build_degraded(out_dir: Path, *, shuffled: float = 0.7) -> Path:
    from sklearn.linear_model import LogisticRegression

    x_tr, x_te, y_tr, y_te = _split()
    rng = np.random.default_rng(0)
    y_bad = y_tr.copy()
    idx = rng.choice(len(y_bad), int(shuffled * len(y_bad)), replace=False)
    y_bad[idx] = rng.permutation(y_bad[idx])
    clf = LogisticRegression(C=1.0, max_iter=400, random_state=0).fit(x_tr, y_bad)
    return _write(out_dir, _to_onnx(clf), x_te, y_te, "degraded")


def build_fragile(out_dir: Path, *, amplitude: float = 1e6) -> Path:
    from sklearn.linear_model import LogisticRegression

    x_tr, x_te, y_tr, y_te = _split()
    clf = LogisticRegression(C=1.0, max_iter=400, random_state=0).fit(x_tr, y_tr)
    w = clf.coef_.T.astype(np.float32)  # [64, 10]
    b = clf.intercept_.astype(np.float32)
    onehot = np.zeros((1, 10), dtype=np.float32)
    onehot[0, 0] = 1.0
    inits = [
        numpy_helper.from_array(w, "W"),
        numpy_helper.from_array(b, "B"),
        numpy_helper.from_array(np.array(16 * np.pi, dtype=np.float32), "freq"),
        numpy_helper.from_array(np.array(amplitude, dtype=np.float32), "amp"),
        numpy_helper.from_array(onehot, "onehot"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axes"),
    ]
    nodes = [
        helper.make_node("MatMul", [INPUT_NAME, "W"], ["z0"]),
        helper.make_node("Add", ["z0", "B"], ["z"]),
        helper.make_node("Mul", [INPUT_NAME, "freq"], ["xf"]),
        helper.make_node("Sin", ["xf"], ["s"]),
        helper.make_node("Mul", ["s", "s"], ["s2"]),
        helper.make_node("ReduceSum", ["s2", "axes"], ["q0"], keepdims=1),
        helper.make_node("Mul", ["q0", "amp"], ["q"]),
        helper.make_node("Mul", ["q", "onehot"], ["bump"]),
        helper.make_node("Add", ["z", "bump"], ["logits"]),
        helper.make_node("Softmax", ["logits"], [OUTPUT_NAME], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "fragile-digits",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [None, N_FEATURES])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [None, 10])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="mlctl-tests")
    onnx.checker.check_model(model)
    return _write(out_dir, model.SerializeToString(), x_te, y_te, "fragile")


def build_good(out_dir: Path, variant: str = "v1") -> Path:
    return build_sample_model(out_dir, variant=variant).path
