"""A pipeline's configuration: what to train, on which data, how to choose and judge the result.

Found by name in ``$MLCTL_HOME/pipelines/NAME.yaml`` (yours) or among the shipped samples
(``control_plane/samples/pipeline/NAME.yaml``); ``--config FILE`` names a file directly. Relative
paths in the file are relative to the file. Shape (the sample ``digits.yaml`` is a working one)::

    name: digits
    model: digits                                   # registry name of what it registers
    environment: uae-local                          # blueprint: bucket, training pool, baseline
    source: s3://uae-local-model-artifacts/datasets/digits/train.csv   # what `watch` watches
    trainer: control_plane.samples.pipeline.train:train                 # the entry point (docs/pipelines.md)
    transforms_tests: test_transforms.py            # pytest module run inside the data-test step
    features: {name: digits-pixels, version: "1", dir: features}       # NAME/VERSION.json schemas
    grid: {C: [0.3, 1.0], max_iter: [300]}          # every combination is one parallel candidate
    select: {metric: accuracy, mode: max}
    classification: internal
    baseline: null                                  # NAME:V; default: the version in production
    gpus: 1                                         # per training candidate (cluster only)
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from control_plane import environments
from control_plane.errors import MlctlError, NotFound
from control_plane.settings import PACKAGE_ROOT, mlctl_home
from control_plane.settings import current as settings

if TYPE_CHECKING:
    from blueprints.schema import Environment

SAMPLES_DIR = PACKAGE_ROOT / "samples" / "pipeline"
MAX_GRID = 64  # a typo in a grid must not start thousands of GPU jobs


class Selection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    metric: str = "accuracy"
    mode: Literal["max", "min"] = "max"


class FeatureSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    version: str
    dir: str = "features"


class Validation(BaseModel):
    """The validation gate's policy (control_plane.validate.ValidationPolicy) for this pipeline."""

    model_config = ConfigDict(extra="forbid")
    accuracy_tolerance: float = 0.02
    f1_tolerance: float = 0.02
    min_accuracy: float | None = None
    min_stability: float = 0.95
    max_fgsm_drop: float = 0.15


class PipelineConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    model: str
    environment: str = "uae-local"
    source: str | None = None
    trainer: str
    transforms_tests: str | None = None
    features: FeatureSet
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    select: Selection = Field(default_factory=Selection)
    label: str = "label"
    classification: str = "internal"
    baseline: str | None = None
    validation: Validation = Field(default_factory=Validation)
    gpus: int = Field(default=1, ge=0, le=8)
    parallelism: int = Field(default=4, ge=1, le=32)
    base_dir: str = ""  # where relative paths resolve (the file's directory); set by load()

    @field_validator("trainer")
    @classmethod
    def _entry(cls, v: str) -> str:
        module, sep, func = v.partition(":")
        if not sep or not module or not func.isidentifier():
            raise ValueError(f"trainer {v!r} is not MODULE:FUNCTION, e.g. mypkg.train:train")
        return v

    def path(self, rel: str) -> Path:
        p = Path(rel)
        return p if p.is_absolute() else Path(self.base_dir) / p

    def features_file(self, name: str | None = None, version: str | None = None) -> Path:
        return self.path(self.features.dir) / (name or self.features.name) / f"{version or self.features.version}.json"

    def candidates(self) -> list[dict[str, Any]]:
        """The parameter grid as a list of parameter sets (the ParallelFor items)."""
        keys = sorted(self.grid)
        combos = [dict(zip(keys, values, strict=True))
                  for values in itertools.product(*(self.grid[k] for k in keys))] or [{}]
        if len(combos) > MAX_GRID:
            raise MlctlError(f"pipeline {self.name}: the grid has {len(combos)} combinations (max {MAX_GRID})",
                             hint="narrow the grid in the pipeline file", exit_code=2)
        return combos


def pipelines_dir() -> Path:
    return mlctl_home() / "pipelines"


def _candidates(name: str) -> list[Path]:
    return [pipelines_dir() / f"{name}.yaml", SAMPLES_DIR / f"{name}.yaml"]


def known() -> list[str]:
    names = {p.stem for d in (pipelines_dir(), SAMPLES_DIR) if d.is_dir() for p in d.glob("*.yaml")}
    return sorted(names)


def load(name: str | None = None, *, path: str | Path | None = None) -> PipelineConfig:
    """The configuration of pipeline ``name`` (or the file ``path``), validated."""
    if path is None:
        if not name:
            raise MlctlError("no pipeline named", hint="pass NAME or --config FILE", exit_code=2)
        found = next((p for p in _candidates(name) if p.is_file()), None)
        if found is None:
            raise NotFound(f"pipeline {name!r} is not defined",
                           hint=f"known pipelines: {', '.join(known()) or 'none'}; or write "
                           f"{pipelines_dir() / (name + '.yaml')} (see docs/pipelines.md)")
        path = found
    path = Path(path)
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFound(f"--config {path}: no such file", hint="pass the pipeline's YAML file") from None
    except (OSError, yaml.YAMLError) as exc:
        raise MlctlError(f"{path}: cannot read the pipeline file ({exc})", hint="fix the YAML", exit_code=2) from None
    if not isinstance(data, dict):
        raise MlctlError(f"{path}: expected a mapping", hint="see docs/pipelines.md", exit_code=2)
    data.setdefault("base_dir", str(path.resolve().parent))
    try:
        cfg = PipelineConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise MlctlError(f"{path}: {where}: {first['msg']}", hint="see docs/pipelines.md for the fields",
                         exit_code=2) from None
    if name and cfg.name != name and path in _candidates(name):
        raise MlctlError(f"{path} defines pipeline {cfg.name!r}, not {name!r}", hint="make name: match the file",
                         exit_code=2)
    return cfg


def to_json(cfg: PipelineConfig) -> str:
    return json.dumps(cfg.model_dump(mode="json"), sort_keys=True)


def from_json(text: str) -> PipelineConfig:
    return PipelineConfig.model_validate(json.loads(text))


def override_environment(cfg: PipelineConfig, env: str | None) -> PipelineConfig:
    return cfg if not env else cfg.model_copy(update={"environment": env})


def env_blueprint(name: str) -> Environment:
    """The environment's blueprint (``blueprints/NAME.yaml`` or a path to one); NotFound otherwise."""
    return environments.load(environments.blueprint_path(name))


# Cluster settings: the only readers of these variables (a token never comes from a flag, so it
# stays out of shell history and process listings).
def kfp_host() -> str | None:
    return settings().kfp_host


def kfp_token() -> str | None:
    return settings().kfp_token


def kfp_namespace() -> str | None:
    return settings().kfp_namespace


def step_image() -> str | None:
    """The step image for cluster runs: our tools image in the environment's registry, by digest."""
    return settings().pipeline_image
