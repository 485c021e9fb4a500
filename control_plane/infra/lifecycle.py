"""The infrastructure lifecycle over a blueprint's stacks: plan, apply, drift, destroy.

Stacks run in dependency order (security -> network -> registry -> cluster -> audit) and destroy
runs in reverse. ``progress`` is called with (stack name, what is happening) so the CLI can show it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blueprints import load_blueprint
from blueprints.schema import Environment
from control_plane.errors import InfraError
from control_plane.infra import emulator_quirks
from control_plane.infra.synth import SynthesizedStack, default_outdir, read_synthesized, synth
from control_plane.infra.terraform import Terraform

Progress = Callable[[str, str], None]
PLAN_FILE = "mlctl.plan"


def _quiet(stack: str, message: str) -> None:
    return None


@dataclass(frozen=True)
class StackResult:
    stack: str
    action: str  # planned, applied, destroyed, checked, blocked
    changes: bool
    seconds: float
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class DriftItem:
    stack: str
    address: str
    actions: list[str]
    attributes: list[str]
    source: str  # "changed outside terraform" or "planned to converge"

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Workspace:
    """The synthesized stacks of a blueprint and the environment each belongs to."""

    stacks: list[SynthesizedStack]
    environments: dict[str, Environment] = field(default_factory=dict)

    def terraform(self, stack: SynthesizedStack) -> Terraform:
        return Terraform(stack.directory, local=self.environments[stack.environment].is_local, stack=stack.name)


def workspace(blueprint: str | Path, *, outdir: str | Path | None = None, synthesize: bool = True,
              progress: Progress = _quiet) -> Workspace:
    bp = load_blueprint(blueprint)
    out = Path(outdir) if outdir else default_outdir(blueprint)
    if synthesize:
        progress(bp.name, f"synthesizing into {out} (typically 15–30 s: the provider bindings load first)")
        stacks = synth(blueprint, out,
                       on_wait=lambda seconds: progress(bp.name, f"synthesizing… {seconds:.0f} s"))
    else:
        stacks = read_synthesized(out)
    envs = {e.name: e for e in bp.environments}
    missing = {s.environment for s in stacks} - set(envs)
    if missing:
        raise InfraError(
            f"{out} was synthesized from another blueprint (environments {', '.join(sorted(missing))})",
            hint="synthesize again: drop --no-synth",
        )
    return Workspace(stacks=stacks, environments=envs)


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.monotonic()
    value = fn()
    return value, time.monotonic() - start


def plan(ws: Workspace, progress: Progress = _quiet) -> list[StackResult]:
    results = []
    applied: set[str] = set()
    for stack in ws.stacks:
        tf = ws.terraform(stack)
        waiting = [d for d in stack.dependencies if d not in applied]
        progress(stack.name, "init")
        tf.init()
        progress(stack.name, "plan")
        try:
            changes, secs = _timed(lambda: tf.plan(PLAN_FILE))  # noqa: B023 - called right here
        except InfraError as exc:
            msg = exc.message.lower()
            if waiting and ("remote state" in msg or "outputs" in msg):
                results.append(StackResult(stack.name, "blocked", True, 0.0,
                                           f"needs {', '.join(waiting)} applied first (reads its outputs)"))
                continue
            raise
        if not changes:
            applied.add(stack.name)
        results.append(StackResult(stack.name, "planned", changes, secs, summarize(tf.show_plan(PLAN_FILE))))
    return results


def apply(ws: Workspace, progress: Progress = _quiet) -> list[StackResult]:
    results = []
    for stack in ws.stacks:
        tf = ws.terraform(stack)
        progress(stack.name, "init")
        tf.init()
        progress(stack.name, "apply")
        _, secs = _timed(tf.apply)
        results.append(StackResult(stack.name, "applied", True, secs))
    return results


def destroy(ws: Workspace, progress: Progress = _quiet) -> list[StackResult]:
    results = []
    for stack in reversed(ws.stacks):
        tf = ws.terraform(stack)
        progress(stack.name, "init")
        tf.init()
        progress(stack.name, "destroy")
        _, secs = _timed(tf.destroy)
        swept = emulator_quirks.sweep_destroyed_trails(ws.environments[stack.environment], stack)
        detail = f"emulator: removed leftover trail(s) {', '.join(swept)}" if swept else ""
        results.append(StackResult(stack.name, "destroyed", True, secs, detail))
    return results


def drift(ws: Workspace, progress: Progress = _quiet) -> list[DriftItem]:
    """Every difference between the deployed resources and the stacks; empty means no drift."""
    items: list[DriftItem] = []
    for stack in ws.stacks:
        tf = ws.terraform(stack)
        progress(stack.name, "init")
        tf.init()
        progress(stack.name, "plan (drift)")
        if tf.plan(PLAN_FILE):
            items.extend(drift_items(stack.name, tf.show_plan(PLAN_FILE)))
        (stack.directory / PLAN_FILE).unlink(missing_ok=True)
    return items


def _changed_attributes(change: dict[str, Any]) -> list[str]:
    before = change.get("before") or {}
    after = change.get("after") or {}
    unknown = change.get("after_unknown") or {}
    keys = set(before) | set(after) | {k for k, v in unknown.items() if v is True}
    return sorted(k for k in keys if before.get(k) != after.get(k) or unknown.get(k) is True)


def drift_items(stack: str, plan_json: dict[str, Any]) -> list[DriftItem]:
    """Name what changed: resources changed outside terraform (``resource_drift``), then what the
    plan would do to converge (``resource_changes`` that are not no-ops)."""
    items = []
    # Terraform reports every refresh difference in resource_drift, including ones our own resources
    # cause (attaching a policy changes the role it attaches to); only those it marks relevant count.
    relevant = {r.get("resource") for r in plan_json.get("relevant_attributes") or []}
    for rc in plan_json.get("resource_drift") or []:
        if rc["address"] not in relevant:
            continue
        change = rc.get("change", {})
        items.append(DriftItem(stack, rc["address"], list(change.get("actions", [])), _changed_attributes(change),
                               "changed outside terraform"))
    seen = {i.address for i in items}
    for rc in _real_changes(plan_json.get("resource_changes") or []):
        if rc["address"] in seen:
            continue
        change = rc["change"]
        items.append(DriftItem(stack, rc["address"], list(change["actions"]), _changed_attributes(change),
                               "planned to converge"))
    return items


def _real_changes(changes: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [rc for rc in changes if set(rc.get("change", {}).get("actions", [])) - {"no-op", "read"}]


def summarize(plan_json: dict[str, Any]) -> str:
    counts: dict[str, int] = {}
    for rc in _real_changes(plan_json.get("resource_changes") or []):
        action = "replace" if len(rc["change"]["actions"]) > 1 else rc["change"]["actions"][0]
        counts[action] = counts.get(action, 0) + 1
    return ", ".join(f"{n} to {a}" for a, n in sorted(counts.items())) or "no changes"
