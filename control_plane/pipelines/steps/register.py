"""The register step: the chosen model becomes the next version of the pipeline's model, signed,
with lineage pinning data, features, code, parameters and the run (SLSA provenance names the run)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from control_plane import registry
from control_plane.errors import Conflict, PipelineFailed
from control_plane.monitor import retrain_hook
from control_plane.pipelines.config import PipelineConfig
from control_plane.registry import list_versions

BUILD_TYPE = "https://github.com/sovereign-mlops/mlctl/pipeline-run/v1"
BUILDER_ID = "https://github.com/sovereign-mlops/mlctl/pipelines"


def next_version(model: str) -> str:
    numbers = [int(mv.version) for mv in list_versions(model) if mv.version.isdigit()]
    return str(max(numbers, default=0) + 1)


def register_candidate(model_dir: str | Path, cfg: PipelineConfig, *, run_id: str, dataset: Mapping[str, Any],
                       data_tests: Mapping[str, Any], evaluation: Mapping[str, Any],
                       code_commit: str | None, engine: str = "local") -> dict[str, Any]:
    """Register the chosen model as the next version of ``cfg.model`` and sign it. Lineage pins the
    data set digest, the feature set (version + schema digest + schema), the code commit, the
    parameters and the pipeline run; the SLSA provenance names the run as the builder invocation."""
    retrain_hook.subscribe()  # a KFP step is its own process: wire the retrain triggers to this registration
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
