"""The pipeline's steps as plain functions: what each KFP component runs, and what can be called
in-process (``bench/pipeline.py`` compares the two).

fetch (dataset by pinned digest) → data tests (feature schema, PII guard, transformation unit
tests) → train (one call of the user's entry point per grid point) → select (best by the declared
metric) → evaluate (the validation gate against the baseline) → register + sign.

Each step raises a ``PipelineFailed`` subclass that names the step, the cause and the fix; the
component wrapper (``component``) writes that to the run's status directory, so the engine can
tell the user which step stopped the run and why, without parsing logs.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from control_plane.errors import (
    DataTestFailed,
    EvaluationFailed,
    MlctlError,
    PipelineFailed,
    TrainingFailed,
)
from control_plane.pipelines.config import PipelineConfig, env_blueprint, from_json

STEPS = ("fetch", "data-tests", "train", "select", "evaluate", "register")
BUILD_TYPE = "https://github.com/sovereign-mlops/mlctl/pipeline-run/v1"
BUILDER_ID = "https://github.com/sovereign-mlops/mlctl/pipelines"
UNIT_TEST_TIMEOUT_S = 600
_CHUNK = 1 << 20


@dataclass(frozen=True)
class StepContext:
    """What every step of one run shares (passed to each component as JSON)."""

    run_id: str
    config: PipelineConfig
    status_dir: str | None = None  # local runs: where steps report state; None on a cluster
    code_commit: str | None = None
    engine: str = "local"

    def to_json(self) -> str:
        return json.dumps({"run_id": self.run_id, "config": self.config.model_dump(mode="json"),
                           "status_dir": self.status_dir, "code_commit": self.code_commit,
                           "engine": self.engine}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> StepContext:
        raw = json.loads(text)
        return cls(run_id=raw["run_id"], config=from_json(json.dumps(raw["config"])),
                   status_dir=raw.get("status_dir"), code_commit=raw.get("code_commit"),
                   engine=raw.get("engine", "local"))


# ---- status reporting (local engine) ---------------------------------------------------------


def _status(ctx: StepContext, key: str, **fields: Any) -> None:
    if not ctx.status_dir:
        return
    path = Path(ctx.status_dir) / f"{key}.json"
    old = json.loads(path.read_text()) if path.is_file() else {}
    old.update(fields)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(old, sort_keys=True, default=str))
    tmp.replace(path)  # the engine's progress thread never reads half a file


def component(step: str, context: str, fn: Callable[[StepContext], Any], *, key: str | None = None) -> str:
    """Run one step inside a KFP component: report running/done/failed, return the result as JSON.

    A failure is re-raised, so the component exits non-zero and KFP marks the task failed."""
    ctx = StepContext.from_json(context)
    key = key or step
    _status(ctx, key, step=step, state="running", started=time.time())
    try:
        result = fn(ctx)
    except MlctlError as exc:
        _status(ctx, key, state="failed", finished=time.time(), message=exc.message, hint=exc.hint,
                exit_code=exc.exit_code, kind=type(exc).__name__)
        print(f"step {step} failed: {exc}", file=sys.stderr)
        raise
    except Exception as exc:  # a bug, not a user mistake: keep the traceback in the step log
        traceback.print_exc()
        _status(ctx, key, state="failed", finished=time.time(), kind="PipelineFailed", exit_code=20,
                message=f"step {step} crashed: {type(exc).__name__}: {exc}",
                hint="see the step log in the run directory; this is a defect worth reporting")
        raise
    _status(ctx, key, state="done", finished=time.time())
    return json.dumps(result, sort_keys=True, default=str)


# ---- fetch -----------------------------------------------------------------------------------


def _copy_hashing(read: Callable[[int], bytes], dest: Path) -> tuple[str, str, int]:
    sha, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    with dest.open("wb") as out:
        while chunk := read(_CHUNK):
            sha.update(chunk)
            md5.update(chunk)
            size += len(chunk)
            out.write(chunk)
    return sha.hexdigest(), md5.hexdigest(), size


def _s3_location(uri: str) -> tuple[str, str, str | None]:
    parsed = urlparse(uri)
    version = parse_qs(parsed.query).get("versionId", [None])[0]
    return parsed.netloc, parsed.path.lstrip("/"), version


def s3_client(cfg: PipelineConfig) -> Any:
    import boto3

    from control_plane.local.emulator import client_kwargs

    return boto3.client("s3", **client_kwargs(env_blueprint(cfg.environment)))


def check_bucket(cfg: PipelineConfig, uri: str, step: str = "fetch") -> None:
    """Data sets come from the environment's own bucket: nothing is read from outside it."""
    bucket = _s3_location(uri)[0]
    env = env_blueprint(cfg.environment)
    if bucket != env.registries.model_bucket:
        raise PipelineFailed(f"{step}: {uri} is not in environment {env.name}'s bucket "
                             f"{env.registries.model_bucket}", step=step,
                             hint=f"copy the data set into s3://{env.registries.model_bucket}/datasets/ "
                             "(in-region, encrypted) and pin that object")


def fetch_dataset(ref: str, dest_dir: str | Path, cfg: PipelineConfig) -> dict[str, Any]:
    """Copy the data set ``URI@DIGEST`` into ``dest_dir`` and refuse it unless its bytes match the pin.

    URIs: ``s3://BUCKET/KEY[?versionId=V]`` in the environment's bucket, ``file:///path`` or a path.
    Digests: ``sha256:`` or ``md5:`` (what a DVC ``.dvc`` file records for a file). A ``dvc:`` or
    ``lakefs:`` commit pin is refused with the way to turn it into a content pin."""
    from control_plane.registry.lineage import LineageError, parse_dataset

    try:
        spec = parse_dataset(ref)
    except LineageError as exc:
        raise PipelineFailed(f"fetch: {exc.message}", step="fetch", hint=exc.hint, exit_code=2) from None
    uri, pinned = spec["uri"], spec["digest"]
    algo, want = next(iter(pinned.items()))
    if algo not in ("sha256", "md5"):
        raise PipelineFailed(
            f"fetch: {ref} pins a {algo}; this step verifies content digests only", step="fetch",
            hint="materialize that revision (dvc get / lakectl fs download), then pin the file by "
            "sha256 (sha256sum FILE)")
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    suffix = Path(urlparse(uri).path).suffix or ".csv"
    dest = dest_dir / f"data{suffix}"
    if uri.startswith("s3://"):
        check_bucket(cfg, uri)
        bucket, key, version = _s3_location(uri)
        kwargs: dict[str, str] = {"Bucket": bucket, "Key": key}
        if version:
            kwargs["VersionId"] = version
        try:
            body = s3_client(cfg).get_object(**kwargs)["Body"]
        except Exception as exc:  # botocore's errors carry the code we show
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
            raise PipelineFailed(f"fetch: cannot read {uri} ({code})", step="fetch",
                                 hint="check the object exists in the environment's bucket and the "
                                 "emulator / AWS credentials are reachable") from None
        sha, md5, size = _copy_hashing(body.read, dest)
    else:
        src = Path(urlparse(uri).path if uri.startswith("file://") else uri)
        if not src.is_file():
            raise PipelineFailed(f"fetch: {src}: no such file", step="fetch",
                                 hint="pass an existing file, file:///abs/path or s3://bucket/key")
        with src.open("rb") as fh:
            sha, md5, size = _copy_hashing(fh.read, dest)
    got = sha if algo == "sha256" else md5
    if got != want:
        dest.unlink(missing_ok=True)
        raise PipelineFailed(
            f"fetch: {uri} has {algo} {got}, the pin says {want}: the data changed since it was pinned",
            step="fetch", hint=f"pin the version you mean to train on (--dataset {uri}@sha256:{sha}), "
            "or restore the pinned data")
    return {"ref": spec["ref"], "uri": uri, "digest": pinned, "sha256": sha, "bytes": size,
            "file": dest.name}


# ---- data tests ------------------------------------------------------------------------------


def feature_set(cfg: PipelineConfig, features: str | None) -> tuple[str, str, dict[str, Any], str]:
    """(name, version, schema, sha256 of the schema file) of ``NAME@VER`` or the pipeline's default."""
    from control_plane.registry.lineage import LineageError, parse_features

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
    from control_plane import audit
    from control_plane.pii import PII_CLASSIFICATION, scan_path, summarize

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
    from control_plane.monitor.datasets import read_table
    from control_plane.validate import check_schema

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


# ---- train and select ------------------------------------------------------------------------


def _entry_point(cfg: PipelineConfig) -> Callable[..., Any]:
    module, _, func = cfg.trainer.partition(":")
    try:
        fn = getattr(importlib.import_module(module), func)
    except (ImportError, AttributeError) as exc:
        raise TrainingFailed(f"train: cannot load the entry point {cfg.trainer} ({exc})", step="train",
                             hint="fix trainer: MODULE:FUNCTION in the pipeline file (the module must be "
                             "importable in the step's image)") from None
    if not callable(fn):
        raise TrainingFailed(f"train: {cfg.trainer} is not a function", step="train",
                             hint="point trainer: at def train(data, params, out)")
    return fn


def train_candidate(data_file: str | Path, params: Mapping[str, Any], out_dir: str | Path,
                    cfg: PipelineConfig) -> dict[str, Any]:
    """Call the entry point once and hold it to the contract: ``model.json`` in ``out`` and metrics
    (returned, or ``metrics.json``) that include the selection metric."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fn = _entry_point(cfg)
    try:
        returned = fn(data=Path(data_file), params=dict(params), out=out)
    except Exception as exc:  # the user's code: any exception is a failed training
        traceback.print_exc()
        raise TrainingFailed(f"train: {cfg.trainer} failed with params {dict(params)}: "
                             f"{type(exc).__name__}: {exc}", step="train",
                             hint="fix the entry point or the grid in the pipeline file; the step log holds "
                             "the traceback") from None
    if not (out / "model.json").is_file():
        raise TrainingFailed(f"train: {cfg.trainer} wrote no model.json into its output directory",
                             step="train", hint="the entry point must write out/model.json (docs/pipelines.md)")
    metrics: Any = returned
    if not isinstance(metrics, Mapping):
        try:
            metrics = json.loads((out / "metrics.json").read_text())
        except (OSError, json.JSONDecodeError):
            metrics = None
    if not isinstance(metrics, Mapping) or not isinstance(metrics.get(cfg.select.metric), int | float):
        raise TrainingFailed(f"train: {cfg.trainer} reported no numeric {cfg.select.metric!r} metric",
                             step="train", hint="return a dict of metrics (or write out/metrics.json) that "
                             f"includes {cfg.select.metric}")
    clean = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}
    (out / "metrics.json").write_text(json.dumps(clean, sort_keys=True))
    (out / "params.json").write_text(json.dumps(dict(params), sort_keys=True, default=str))
    return {"params": dict(params), "metrics": clean}


def select_best(candidates: list[str | Path], cfg: PipelineConfig) -> dict[str, Any]:
    """The index of the best candidate by the declared metric (ties: the first in grid order)."""
    scored = []
    for i, path in enumerate(candidates):
        metrics = json.loads((Path(path) / "metrics.json").read_text())
        params = json.loads((Path(path) / "params.json").read_text())
        scored.append({"index": i, "params": params, "metrics": metrics})
    if not scored:
        raise PipelineFailed("select: no training candidates", step="select", hint="give the pipeline a grid")
    sign = 1.0 if cfg.select.mode == "max" else -1.0
    best = max(scored, key=lambda c: (sign * c["metrics"][cfg.select.metric], -c["index"]))
    return {"best": best["index"], "params": best["params"], "metrics": best["metrics"],
            "metric": cfg.select.metric, "candidates": scored}


# ---- evaluate --------------------------------------------------------------------------------


def baseline_ref(cfg: PipelineConfig) -> str | None:
    if cfg.baseline:
        return cfg.baseline
    from control_plane.validate.gate import production_baseline

    prod = production_baseline(cfg.model, cfg.environment)
    return None if prod is None else f"{cfg.model}:{prod}"


def evaluate_candidate(model_dir: str | Path, cfg: PipelineConfig, run_id: str) -> dict[str, Any]:
    """The validation gate (metrics against the baseline on the candidate's held-out set, noise
    stability, FGSM) as a step: a failed check stops the run before anything is registered."""
    import numpy as np

    from control_plane.validate import infer_schema
    from control_plane.validate.gate import (
        Candidate,
        ValidationPolicy,
        parse_ref,
        record_decision,
        resolve,
        validate_paths,
    )

    model_dir = Path(model_dir)
    schema = None
    if (model_dir / "eval.npz").is_file():
        with np.load(model_dir / "eval.npz") as z:
            schema = infer_schema(np.asarray(z["X"])) if "X" in z else None
    ref = baseline_ref(cfg)
    try:
        base = resolve(*parse_ref(ref)) if ref else None
        v = cfg.validation
        policy = ValidationPolicy(accuracy_tolerance=v.accuracy_tolerance, f1_tolerance=v.f1_tolerance,
                                  min_accuracy=v.min_accuracy, min_stability=v.min_stability,
                                  max_fgsm_drop=v.max_fgsm_drop)
        report = validate_paths(Candidate(ref=f"{cfg.model}:run-{run_id}", model_dir=model_dir, schema=schema),
                                base, policy=policy, environment=cfg.environment)
    except EvaluationFailed:
        raise
    except MlctlError as exc:
        raise EvaluationFailed(f"evaluate: {exc.message}", step="evaluate", hint=exc.hint) from None
    record_decision(report)
    if not report.passed:
        why = "; ".join(f"{c.name}: {c.detail}" for c in report.failed)
        raise EvaluationFailed(
            f"evaluate: the candidate failed the validation gate against {ref or 'no baseline'}: {why}",
            step="evaluate", hint="nothing was registered; improve the model or the data and run again "
            "(or, if the baseline itself should change, set baseline: in the pipeline file)")
    return report.to_dict()


# ---- register and sign -----------------------------------------------------------------------


def next_version(model: str) -> str:
    from control_plane.registry import list_versions

    numbers = [int(mv.version) for mv in list_versions(model) if mv.version.isdigit()]
    return str(max(numbers, default=0) + 1)


def register_candidate(model_dir: str | Path, cfg: PipelineConfig, *, run_id: str, dataset: Mapping[str, Any],
                       data_tests: Mapping[str, Any], evaluation: Mapping[str, Any],
                       code_commit: str | None, engine: str = "local") -> dict[str, Any]:
    """Register the chosen model as the next version of ``cfg.model`` and sign it. Lineage pins the
    data set digest, the feature set (version + schema digest + schema), the code commit, the
    parameters and the pipeline run; the SLSA provenance names the run as the builder invocation."""
    from control_plane import registry
    from control_plane.errors import Conflict
    from control_plane.monitor import retrain

    retrain.subscribe()  # a KFP step is its own process: wire the retrain triggers to this registration
    model_dir = Path(model_dir)
    params = json.loads((model_dir / "params.json").read_text())
    metrics = json.loads((model_dir / "metrics.json").read_text())
    feats = data_tests["features"]
    extra = {
        "pipeline": {"name": cfg.name, "run_id": run_id, "engine": engine},
        "feature_set": {**feats, "schema": data_tests.get("schema")},
        "evaluation": {"baseline": evaluation.get("baseline"), "metrics": evaluation.get("metrics"),
                       "decision": evaluation.get("decision")},
    }
    builder = {"build_type": BUILD_TYPE, "builder_id": f"{BUILDER_ID}/{cfg.name}@{engine}", "invocation_id": run_id}
    for _attempt in range(3):  # another run may take the version number between list and insert
        version = next_version(cfg.model)
        try:
            mv = registry.register(cfg.model, version, model_dir, datasets=[dataset["ref"]],
                                   features=[f"{feats['name']}@{feats['version']}"], code_commit=code_commit,
                                   params=params, metrics=metrics, classification=cfg.classification,
                                   lineage_extra=extra, builder=builder)
            break
        except Conflict:
            continue
    else:
        raise PipelineFailed(f"register: could not claim a new version of {cfg.model}", step="register",
                             hint="other runs are registering the same model; run again")
    signed = registry.sign(cfg.model, mv.version)
    return {"ref": mv.ref, "version": mv.version, "root_digest": mv.root_digest,
            "key_id": signed.signature.key_id, "params": params, "metrics": metrics}


def copy_model(src: str | Path, dest: str | Path) -> None:
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(src, dest)
