"""The sample training entry point (the contract is in docs/pipelines.md).

``train(data, params, out)``: ``data`` is the verified data set (CSV), ``params`` one point of the
grid, ``out`` an empty directory to fill with the model (``model.onnx``), ``model.json``, the
held-out evaluation set (``eval.npz``) the validation gate scores, a recorded request
(``sample_input.json``) and ``metrics.json``. It returns the metrics too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from control_plane.samples.digits import INPUT_NAME, N_CLASSES, N_FEATURES, OUTPUT_NAME, _to_onnx
from control_plane.samples.pipeline.transforms import prepare


def train(data: Path, params: dict[str, Any], out: Path) -> dict[str, float]:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.model_selection import train_test_split

    x, y = prepare(pd.read_csv(data))
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.25, random_state=7, stratify=y)
    clf = LogisticRegression(**params, random_state=0)
    clf.fit(x_tr, y_tr)
    pred = clf.predict(x_te)
    metrics = {"accuracy": float((pred == y_te).mean()),
               "f1_macro": float(f1_score(y_te, pred, average="macro"))}
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.onnx").write_bytes(_to_onnx(clf))
    with (out / "eval.npz").open("wb") as fh:
        np.savez(fh, X=x_te, y=y_te)
    (out / "sample_input.json").write_text(json.dumps({"inputs": [
        {"name": INPUT_NAME, "shape": [1, N_FEATURES], "datatype": "FP32", "data": x_te[0].tolist()}]}))
    (out / "model.json").write_text(json.dumps({
        "name": "digits", "format": "onnx", "params": params,
        "inputs": [{"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, N_FEATURES]}],
        "outputs": [{"name": OUTPUT_NAME, "datatype": "FP32", "shape": [-1, N_CLASSES]}],
    }, indent=2, sort_keys=True))
    (out / "metrics.json").write_text(json.dumps(metrics, sort_keys=True))
    return metrics
