"""The data-tests step: the feature schema (types, ranges, nulls, missing/renamed columns), the PII
guard, and the user's transformation unit tests; every failing check is reported."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from control_plane import audit
from control_plane.errors import DataTestFailed
from control_plane.monitor.datasets import read_table
from control_plane.pii import PII_CLASSIFICATION, scan_path, summarize
from control_plane.pipelines.config import PipelineConfig
from control_plane.registry.lineage import LineageError, parse_features
from control_plane.validate import check_schema

UNIT_TEST_TIMEOUT_S = 600


def feature_set(cfg: PipelineConfig, features: str | None) -> tuple[str, str, dict[str, Any], str]:
    """(name, version, schema, sha256 of the schema file) of ``NAME@VER`` or the pipeline's default."""
    if features:
        try:
            parsed = parse_features(features)
        except LineageError as exc:
            raise DataTestFailed(f"data-tests: {exc.message}", step="data-tests", hint=exc.hint) from None
        name, version = parsed["name"], parsed["version"]
    else:
        name, version = cfg.features.name, cfg.features.version
    path = cfg.features_file(name, version)
    try:
        raw = path.read_bytes()
        schema = json.loads(raw)
    except FileNotFoundError:
        have = sorted(p.stem for p in path.parent.glob("*.json")) if path.parent.is_dir() else []
        raise DataTestFailed(f"data-tests: feature set {name}@{version} has no schema at {path}",
                             step="data-tests", hint=f"versions of {name}: {', '.join(have) or 'none'}; "
                             f"publish it as {path}") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise DataTestFailed(f"data-tests: feature set {name}@{version}: {path} is not valid JSON ({exc})",
                             step="data-tests", hint="fix the schema file") from None
    if not isinstance(schema, dict) or not isinstance(schema.get("columns"), dict):
        raise DataTestFailed(f"data-tests: {path}: a feature schema needs a 'columns' mapping",
                             step="data-tests", hint="see docs/pipelines.md, 'Feature sets'")
    return name, version, schema, hashlib.sha256(raw).hexdigest()


def _pii_problems(data: Path, schema: Mapping[str, Any], cfg: PipelineConfig) -> list[tuple[str, str]]:
    findings = scan_path(data)
    tagged = {c for c, col in schema["columns"].items() if isinstance(col, dict) and col.get("pii")}
    untagged = [f for f in findings if f.column not in tagged]
    problems: list[tuple[str, str]] = []
    if untagged:
        cols = sorted({str(f.column) for f in untagged})
        kinds = ", ".join(f"{n} {k}" for k, n in summarize(untagged).items())
        problems.append((f"PII guard: personal data ({kinds}) in column(s) {', '.join(cols)} that the feature "
                         "set does not tag as personal data",
                         "drop or pseudonymise those columns, or tag them \"pii\": true in the feature set and "
                         "classify the pipeline `pii`"))
    elif findings and cfg.classification != PII_CLASSIFICATION:
        problems.append((f"PII guard: columns tagged pii carry personal data but the pipeline is classified "
                         f"{cfg.classification!r}", "set classification: pii in the pipeline file"))
    audit.record(action="pii.guard", subject=str(data), decision="deny" if problems else "allow",
                 reasons=[p for p, _ in problems],
                 details={"classification": cfg.classification, "counts": summarize(findings),
                          "places": [{"kind": f.kind, "column": f.column} for f in findings[:50]]})
    return problems


def _unit_tests(data: Path, cfg: PipelineConfig) -> tuple[str, str] | None:
    if not cfg.transforms_tests:
        return None
    module = cfg.path(cfg.transforms_tests)
    if not module.is_file():
        return (f"transformation unit tests: {module} does not exist",
                "fix transforms_tests: in the pipeline file")
    # Plugins are not auto-loaded (a module that needs one names it in `pytest_plugins`): the step
    # runs the user's tests, not whatever else happens to be installed in the image.
    env = {**os.environ, "MLCTL_PIPELINE_DATA": str(data), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    # -c devnull: the user's module runs under its own rules, not this repository's pytest config.
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", os.devnull,
           "--rootdir", str(module.parent), str(module)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=module.parent,
                             timeout=UNIT_TEST_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return (f"transformation unit tests: {module.name} ran over {UNIT_TEST_TIMEOUT_S} s",
                "make the tests faster or the data sample smaller")
    sys.stderr.write(out.stdout[-20000:] + out.stderr[-5000:])
    if out.returncode == 0:
        return None
    failed = re.findall(r"^FAILED (\S+)", out.stdout, re.M) or re.findall(r"^ERROR (\S+)", out.stdout, re.M)
    summary = (out.stdout.strip().splitlines() or ["no output"])[-1]
    names = ", ".join(f.split("::")[-1] for f in failed[:5]) or summary
    return (f"transformation unit tests failed in {module.name}: {names} ({summary})",
            f"fix the transformation or the data; reproduce with MLCTL_PIPELINE_DATA=DATA pytest {module}")


def run_data_tests(data_file: str | Path, cfg: PipelineConfig, features: str | None = None) -> dict[str, Any]:
    """Feature schema (types, ranges, nulls, missing/renamed columns), PII guard, the user's
    transformation unit tests. Every failing check is reported, not only the first."""
    data = Path(data_file)
    name, version, schema, schema_sha = feature_set(cfg, features)
    problems = _pii_problems(data, schema, cfg)
    frame = read_table(str(data))
    violations = check_schema(frame, schema)
    if violations:
        listed = "; ".join(f"{v.column}: {v.check} ({v.detail})" for v in violations[:8])
        more = f" and {len(violations) - 8} more" if len(violations) > 8 else ""
        problems.append((f"feature schema {name}@{version}: {len(violations)} breaking change(s): {listed}{more}",
                         f"restore the columns and types {name}@{version} declares, or publish a new "
                         f"feature-set version and run with --features {name}@NEW"))
    unit = _unit_tests(data, cfg)
    if unit:
        problems.append(unit)
    if problems:
        raise DataTestFailed("data-tests: " + " | ".join(p for p, _ in problems), step="data-tests",
                             hint="; ".join(h for _, h in problems))
    return {"features": {"name": name, "version": version, "schema_sha256": schema_sha},
            "schema": schema, "rows": len(frame),
            "checks": {"schema": "pass", "pii": "pass", "unit_tests": "pass" if cfg.transforms_tests else "skip"}}
