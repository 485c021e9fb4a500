"""The drift configuration: default and per-feature thresholds, the prediction column and the
remediation, read from YAML (``load_config``) with command-line overrides; every bad key or value
is named with its place in the file and the fix."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from control_plane.errors import MlctlError

REMEDIATIONS = ("none", "alert", "retrain", "rollback")


@dataclass(frozen=True)
class Thresholds:
    psi: float = 0.2
    ks_statistic: float = 0.1
    js_distance: float = 0.1
    p_value: float = 0.01  # family-wise: divided by the number of features tested
    null_share: float = 0.1
    bins: int = 10
    categorical_max_unique: int = 20


@dataclass(frozen=True)
class FeatureRule:
    kind: str | None = None  # "numeric" | "categorical" | None (inferred)
    ignore: bool = False
    thresholds: Thresholds = field(default_factory=Thresholds)


@dataclass(frozen=True)
class DriftConfig:
    defaults: Thresholds = field(default_factory=Thresholds)
    features: Mapping[str, FeatureRule] = field(default_factory=dict)
    prediction_column: str | None = "prediction"
    remediation: str = "alert"

    def rule(self, name: str) -> FeatureRule:
        return self.features.get(name) or FeatureRule(thresholds=self.defaults)


_THRESHOLD_FIELDS = {f.name for f in fields(Thresholds)}


def _thresholds(path: str, where: str, raw: Any, base: Thresholds) -> Thresholds:
    if raw is None:
        return base
    if not isinstance(raw, dict):
        raise MlctlError(
            f"{path}: {where}: must be a mapping", hint=f"keys: {sorted(_THRESHOLD_FIELDS)}", exit_code=2
        )
    unknown = set(raw) - _THRESHOLD_FIELDS - {"type", "ignore"}
    if unknown:
        raise MlctlError(
            f"{path}: {where}: unknown key(s) {sorted(unknown)}",
            hint=f"threshold keys are {sorted(_THRESHOLD_FIELDS)}; also type, ignore",
            exit_code=2,
        )
    values: dict[str, Any] = {}
    for key in _THRESHOLD_FIELDS & set(raw):
        try:
            values[key] = int(raw[key]) if key in ("bins", "categorical_max_unique") else float(raw[key])
        except (TypeError, ValueError):
            raise MlctlError(
                f"{path}: {where}.{key}: {raw[key]!r} is not a number", hint="give a number", exit_code=2
            ) from None
    out = replace(base, **values)
    if not (0 < out.p_value < 1) or out.bins < 2 or min(out.psi, out.ks_statistic, out.js_distance) < 0:
        raise MlctlError(
            f"{path}: {where}: p_value must be in (0, 1), bins >= 2, thresholds >= 0",
            hint="e.g. psi: 0.2, ks_statistic: 0.1, js_distance: 0.1, p_value: 0.01",
            exit_code=2,
        )
    return out


def load_config(path: str | Path | None, **overrides: Any) -> DriftConfig:
    """Read a drift config (YAML) and apply command-line overrides of the default thresholds.

    ```yaml
    defaults: {psi: 0.2, ks_statistic: 0.1, js_distance: 0.1, p_value: 0.01}
    features:
      amount: {psi: 0.1}
      channel: {type: categorical, js_distance: 0.05}
      customer_ref: {ignore: true}
    prediction_column: prediction
    remediation: retrain          # none | alert | retrain | rollback
    ```
    """
    doc: dict[str, Any] = {}
    where = str(path) if path else "flags"
    if path:
        p = Path(path)
        if not p.is_file():
            raise MlctlError(
                f"drift config {p} does not exist",
                hint="give a YAML file (see docs/monitoring.md)",
                exit_code=2,
            )
        try:
            doc = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise MlctlError(
                f"{p}: cannot parse YAML ({exc})", hint="fix the YAML syntax", exit_code=2
            ) from None
        if not isinstance(doc, dict):
            raise MlctlError(
                f"{p}: must be a mapping",
                hint="top-level keys: defaults, features, prediction_column, remediation",
                exit_code=2,
            )
        unknown = set(doc) - {"defaults", "features", "prediction_column", "remediation"}
        if unknown:
            raise MlctlError(
                f"{p}: unknown key(s) {sorted(unknown)}",
                hint="top-level keys: defaults, features, prediction_column, remediation",
                exit_code=2,
            )
    defaults = _thresholds(where, "defaults", doc.get("defaults"), Thresholds())
    flag_values = {k: v for k, v in overrides.items() if v is not None and k in _THRESHOLD_FIELDS}
    defaults = _thresholds(where, "flags", flag_values, defaults) if flag_values else defaults
    rules: dict[str, FeatureRule] = {}
    feats = doc.get("features") or {}
    if not isinstance(feats, dict):
        raise MlctlError(
            f"{where}: features: must map feature names to settings",
            hint="features: {amount: {psi: 0.1}}",
            exit_code=2,
        )
    for name, raw in feats.items():
        raw = raw or {}
        kind = raw.get("type") if isinstance(raw, dict) else None
        if kind not in (None, "numeric", "categorical"):
            raise MlctlError(
                f"{where}: features.{name}.type: {kind!r} is not numeric or categorical",
                hint="type: numeric | categorical",
                exit_code=2,
            )
        rules[str(name)] = FeatureRule(
            kind=kind,
            ignore=bool(raw.get("ignore", False)) if isinstance(raw, dict) else False,
            thresholds=_thresholds(where, f"features.{name}", raw, defaults),
        )
    remediation = overrides.get("remediation") or doc.get("remediation") or "alert"
    if remediation not in REMEDIATIONS:
        raise MlctlError(
            f"{where}: remediation {remediation!r} is not one of {list(REMEDIATIONS)}",
            hint="none | alert | retrain | rollback",
            exit_code=2,
        )
    pred = overrides.get("prediction_column") or doc.get("prediction_column", "prediction")
    return DriftConfig(defaults=defaults, features=rules, prediction_column=pred, remediation=remediation)
