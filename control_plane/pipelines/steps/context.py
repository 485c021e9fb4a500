"""What every pipeline step shares: the run's context (passed to each component as JSON) and the
component wrapper that reports running/done/failed to the run's status directory."""

from __future__ import annotations

import json
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from control_plane.errors import MlctlError
from control_plane.identity import delegation
from control_plane.pipelines.config import PipelineConfig, from_json

STEPS = ("fetch", "data-tests", "train", "select", "evaluate", "register")


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
        delegation.belongs_to(ctx.run_id)  # a delegation credential must be this run's, and intact
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
