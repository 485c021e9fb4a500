"""Infrastructure verbs: synth, bootstrap, plan, apply, drift, destroy, the policy gate (``check``)
and blueprint validation.

Each verb takes a :class:`Context`, returns a view and never prints; long work reports through the
``progress(stack, message)`` callback the front end passes. The verbs that change deployed
infrastructure (bootstrap, apply, destroy) are authorized per environment of the blueprint
(``infra.bootstrap`` / ``infra.apply`` / ``infra.destroy`` in ``policies/rbac.rego``: platform-admin)
and write one audit entry per environment when done. Reads (synth, plan, drift, check, validate)
need no role: they change nothing that is deployed.

The blueprint is loaded before authorization, so a broken blueprint is a usage error (exit 2)
naming the field, whoever runs the command.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.markup import escape

from blueprints.schema import Cloud, Environment
from control_plane import audit, environments
from control_plane.errors import BlueprintError, DriftDetected, MlctlError, PolicyViolation
from control_plane.infra import lifecycle
from control_plane.infra.azure import bootstrap_azure
from control_plane.infra.bootstrap import bootstrap as bootstrap_backend
from control_plane.infra.synth import SynthesizedStack, default_outdir
from control_plane.output import err_console, table
from control_plane.policy.findings import GateReport
from control_plane.policy.infra_gate import check_blueprint, check_stacks, stacks_in
from control_plane.services.context import Context

__all__ = [
    "CHANGING_VERBS", "SERVED_BLUEPRINT", "SERVED_BLUEPRINT_HINT", "BackendsView", "BlueprintValidationView", "DriftView", "GateView", "StackResultsView",
    "SynthView", "apply", "authorize", "bootstrap", "check", "destroy", "drift", "plan", "synth",
    "validate_blueprints",
]

Progress = lifecycle.Progress
_quiet = lifecycle._quiet

# Through `mlctl server`, a blueprint is named, never a path: the server runs `blueprints/NAME.yaml`
# of its own (or its MLCTL_BLUEPRINT), so a caller cannot point it at a file of its choosing.
SERVED_BLUEPRINT = environments.BLUEPRINT_NAME  # what --blueprint may be through the server
SERVED_BLUEPRINT_HINT = ("give a blueprint the server has by name (e.g. --blueprint uae-local), or leave --blueprint "
                         "out for the server's default (its MLCTL_BLUEPRINT)")


# --- views ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SynthView:
    outdir: Path
    stacks: Sequence[SynthesizedStack]

    def as_json(self) -> Any:
        return {"outdir": str(self.outdir), "stacks": [s.as_dict() for s in self.stacks]}

    def renderables(self) -> Iterable[Any]:
        yield table(f"stacks synthesized into {self.outdir}", ["order", "stack", "environment", "cloud", "depends on"],
                    [(s.order, s.name, s.environment, s.cloud, ", ".join(s.dependencies)) for s in self.stacks])


@dataclass(frozen=True)
class BackendsView:
    """One remote-state backend per environment (``backends``: the cloud's bootstrap result, with
    its ``cloud``); the table's rows are derived from them, so the API's JSON rebuilds the view."""

    backends: Sequence[dict[str, Any]]

    def as_json(self) -> Any:
        return {"backends": list(self.backends)}

    @property
    def rows(self) -> list[tuple[str, str, str, str, str]]:
        return [_backend_row(b) for b in self.backends]

    def renderables(self) -> Iterable[Any]:
        yield table("state backends", ["environment", "backend", "region", "state key", "new"], self.rows)


def _backend_row(b: dict[str, Any]) -> tuple[str, str, str, str, str]:
    if b["cloud"] == "azure":
        return (b["environment"], f"azurerm://{b['storage_account']}/{b['container']}", b["region"], b["key_id"], "-")
    new = ("bucket+key" if b["created_bucket"] and b["created_key"] else "bucket" if b["created_bucket"]
           else "key" if b["created_key"] else "no")
    return (b["environment"], f"s3://{b['bucket']}", b["region"], b["kms_key_arn"], new)


@dataclass(frozen=True)
class StackResultsView:
    title: str
    results: Sequence[lifecycle.StackResult]

    def as_json(self) -> Any:
        return {"stacks": [r.as_dict() for r in self.results]}

    def renderables(self) -> Iterable[Any]:
        yield table(self.title, ["stack", "result", "seconds", "detail"],
                    [(r.stack, r.action, f"{r.seconds:.1f}", r.detail) for r in self.results])


@dataclass(frozen=True)
class DriftView:
    """What differs between the deployed resources and the stacks; drift is a failure (exit 5)."""

    items: Sequence[lifecycle.DriftItem]

    def as_json(self) -> Any:
        return {"drift": bool(self.items), "changes": [i.as_dict() for i in self.items]}

    def renderables(self) -> Iterable[Any]:
        if not self.items:
            yield "no drift: every stack matches what is deployed"
            return
        yield table("drift", ["stack", "resource", "actions", "attributes", "source"],
                    [(i.stack, i.address, ",".join(i.actions), ", ".join(i.attributes), i.source)
                     for i in self.items])

    def failure(self) -> MlctlError | None:
        if not self.items:
            return None
        names = ", ".join(sorted({i.address for i in self.items}))
        return DriftDetected(
            f"{len(self.items)} resource(s) drifted: {names}",
            hint="revert the manual change, or run `mlctl infra apply` to converge back to the blueprint",
        )


@dataclass(frozen=True)
class GateView:
    """The infra policy gate's findings; unexplained ones fail (PolicyViolation)."""

    report: GateReport

    def as_json(self) -> Any:
        return self.report.as_dict()

    def renderables(self) -> Iterable[Any]:
        report = self.report
        rows = [
            (
                "[red]FAIL[/]" if f.skipped_reason is None else "[dim]skipped[/]",
                f.source,
                escape(f.id),
                escape(f.stack),
                escape(f.resource),
                escape(f.message if f.skipped_reason is None
                       else f"{f.message} — accepted: {_gist(f.skipped_reason)}"),
            )
            for f in sorted(report.findings, key=lambda f: (f.skipped_reason is not None, f.stack, f.resource))
        ]
        if rows:
            yield table("Infra policy findings", ["status", "source", "id", "stack", "resource", "message"], rows)
        yield ("[green]" if report.passed else "[red]") + escape(report.summary()) + "[/]"

    @property
    def notes(self) -> list[str]:
        """Warnings for stderr, under either output format."""
        return [
            f"[yellow]warning:[/] skip entry {stale.index} ({escape(stale.id)} on {escape(stale.resource)}) "
            "matched no finding; remove it from the skip file if the stack was fixed"
            for stale in self.report.stale_skips
        ]

    def failure(self) -> MlctlError | None:
        report = self.report
        if report.passed:
            return None
        ids = ", ".join(sorted({f"{f.id} {f.resource}" for f in report.unexplained})[:5])
        more = "" if len(report.unexplained) <= 5 else f" (+{len(report.unexplained) - 5} more)"
        return PolicyViolation(
            f"infra policy gate failed: {len(report.unexplained)} unexplained finding(s): {ids}{more}",
            hint=f"fix the stacks, or justify an accepted finding in {report.skips_file} (id, resource, reason)",
        )


def _gist(reason: str) -> str:
    """The first sentence of a skip reason: the table stays readable; --output json has it all."""
    head, dot, _ = reason.partition(". ")
    return head + (dot.strip() if dot else "")


@dataclass(frozen=True)
class BlueprintValidationView:
    """Per file: valid with its environments, or the error and its fix."""

    files: Sequence[dict[str, Any]]
    failures: Sequence[MlctlError] = field(default_factory=list)

    def as_json(self) -> Any:
        return {"valid": not self.failures, "files": list(self.files)}

    def renderables(self) -> Iterator[Any]:
        rows = [
            (r["file"], str(e["name"]), str(e["cloud"]), str(e["region"]), ", ".join(e["gpu_pools"]) or "-")
            for r in self.files if r["valid"] for e in r["environments"]
        ]
        if rows:
            yield table("Valid blueprints", ["file", "environment", "cloud", "region", "GPU pools"], rows)
        # every failure but the last is told here (stderr); the last is the command's error
        for failure in self.failures[:-1]:
            err_console.print(f"[bold red]error:[/] {escape(failure.message)}", highlight=False)
            if failure.hint:
                err_console.print(f"  [bold]fix:[/] {escape(failure.hint)}", highlight=False)

    def failure(self) -> MlctlError | None:
        if not self.failures:
            return None
        last = self.failures[-1]
        if len(self.failures) == 1:
            return last
        return BlueprintError(
            f"{len(self.failures)} of {len(self.files)} blueprint(s) invalid; the last: {last.message}",
            hint=last.hint or "fix the fields named above",
        )


# --- verbs ---------------------------------------------------------------------------------------


CHANGING_VERBS = ("bootstrap", "apply", "destroy")  # authorized per environment: infra.<verb>


def authorize(ctx: Context, verb: str, blueprint: Path) -> list[Environment]:
    """``infra.<verb>`` (bootstrap, apply, destroy) on every environment of ``blueprint`` for ``ctx``'s
    identity, denials audited; the environments. The server calls it in the request, before it
    starts the background work, so that a refusal is the request's answer (403) and nothing starts."""
    if verb not in CHANGING_VERBS:
        raise ValueError(f"infra {verb} changes nothing deployed: it needs no authorization")
    envs = list(environments.blueprint(blueprint).environments)
    for env in envs:
        ctx.authorize(f"infra.{verb}", env.name, env=env)
    return envs


def _audit_done(ctx: Context, action: str, envs: Iterable[Environment], details: dict[str, Any]) -> None:
    with ctx.acting():
        for env in envs:
            audit.record(action=action, subject=env.name, decision="allow", details=details)


def _workspace(blueprint: Path, outdir: Path | None, no_synth: bool, progress: Progress) -> lifecycle.Workspace:
    return lifecycle.workspace(blueprint, outdir=outdir, synthesize=not no_synth, progress=progress)


def synth(ctx: Context, blueprint: Path, *, outdir: Path | None = None, progress: Progress = _quiet) -> SynthView:
    """Synthesize the blueprint's stacks into Terraform JSON (one directory per stack)."""
    out = outdir or default_outdir(blueprint)
    ws = lifecycle.workspace(blueprint, outdir=out, progress=progress)
    return SynthView(out, ws.stacks)


def bootstrap(ctx: Context, blueprint: Path, *, progress: Progress = _quiet) -> BackendsView:
    """Create (or re-assert) each environment's remote-state backend; idempotent."""
    envs = authorize(ctx, "bootstrap", blueprint)
    payload: list[dict[str, Any]] = []
    for env in envs:
        if env.cloud is Cloud.azure:
            progress(env.name, f"pre-flight and state storage in {env.region}")
            payload.append({"cloud": "azure", **bootstrap_azure(env).as_dict()})
        else:
            progress(env.name, f"state backend s3://{env.state.bucket} in {env.region}")
            payload.append({"cloud": "aws", **bootstrap_backend(env).as_dict()})
        _audit_done(ctx, "infra.bootstrap", [env], {"blueprint": str(blueprint), "backend": _backend_row(payload[-1])[1]})
    return BackendsView(payload)


def plan(ctx: Context, blueprint: Path, *, outdir: Path | None = None, no_synth: bool = False,
         progress: Progress = _quiet) -> StackResultsView:
    """terraform plan for every stack (a stack whose inputs are not applied yet shows as blocked)."""
    ws = _workspace(blueprint, outdir, no_synth, progress)
    return StackResultsView("plan", lifecycle.plan(ws, progress))


def _change(ctx: Context, verb: str, blueprint: Path, outdir: Path | None, no_synth: bool,
            progress: Progress) -> StackResultsView:
    """apply / destroy: authorized for every environment first, audited per environment after."""
    envs = authorize(ctx, verb, blueprint)
    ws = _workspace(blueprint, outdir, no_synth, progress)
    results = getattr(lifecycle, verb)(ws, progress)
    _audit_done(ctx, f"infra.{verb}", envs, {"blueprint": str(blueprint), "stacks": [r.stack for r in results]})
    return StackResultsView(verb, results)


def apply(ctx: Context, blueprint: Path, *, outdir: Path | None = None, no_synth: bool = False,
          progress: Progress = _quiet) -> StackResultsView:
    """terraform apply every stack in dependency order."""
    return _change(ctx, "apply", blueprint, outdir, no_synth, progress)


def drift(ctx: Context, blueprint: Path, *, outdir: Path | None = None, no_synth: bool = False,
          progress: Progress = _quiet) -> DriftView:
    """Compare what is deployed with the stacks (the view fails with exit 5 on drift)."""
    ws = _workspace(blueprint, outdir, no_synth, progress)
    return DriftView(lifecycle.drift(ws, progress))


def destroy(ctx: Context, blueprint: Path, *, outdir: Path | None = None, no_synth: bool = False,
            progress: Progress = _quiet) -> StackResultsView:
    """terraform destroy every stack in reverse dependency order (the front end confirms first)."""
    return _change(ctx, "destroy", blueprint, outdir, no_synth, progress)


def check(ctx: Context, blueprint: Path, *, stacks_dir: Path | None = None, skips: Path,
          progress: Progress = _quiet) -> GateView:
    """checkov and the Rego guardrails over every stack of ``blueprint`` (or of ``stacks_dir``)."""
    if stacks_dir is not None:
        return GateView(check_stacks(stacks_in(stacks_dir), blueprint=str(stacks_dir), skips_path=skips))
    progress("check", f"synthesizing {blueprint} ...")
    return GateView(check_blueprint(blueprint, skips_path=skips))


def _summary(env: Environment) -> dict[str, Any]:
    return {
        "name": env.name,
        "cloud": str(env.cloud),
        "region": env.region,
        "vpc_cidr": str(env.network.vpc_cidr),
        "segments": [str(s.name) for s in env.network.segments],
        "gpu_pools": [f"{p.name} ({p.instance_type})" for p in env.cluster.gpu_pools],
        "local": env.is_local,
    }


def validate_blueprints(ctx: Context, files: Sequence[Path]) -> BlueprintValidationView:
    """Load and validate each file (residency, CIDRs, GPU catalogue, required fields); never raises
    for a bad file: the view names every failure and fails with the last."""
    results: list[dict[str, Any]] = []
    failures: list[MlctlError] = []
    for path in files:
        try:
            bp = environments.blueprint(path)
        except MlctlError as exc:
            failures.append(exc)
            results.append({"file": str(path), "valid": False, "error": exc.message, "fix": exc.hint})
            continue
        results.append({"file": str(path), "valid": True, "environments": [_summary(e) for e in bp.environments]})
    return BlueprintValidationView(results, failures)
