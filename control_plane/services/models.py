"""Model verbs: register, show, list, sign, verify, export, optimize, validate.

Each verb authorizes through ``ctx.authorize`` (RBAC, ``policies/rbac.rego``) before it calls the
registry / optimizer / validation gate, runs the domain code as ``ctx``'s actor (``ctx.acting()``),
and returns a view. The domain functions record their own audit entries (a registration's row and
its entry commit in one transaction), so each verb is audited exactly once; none of them
authorizes: this module is the one place that does.

Read verbs (``show``, ``list_versions``, ``verify``) need no permission, as before; the validation
gate has none either (``model.validate`` is recorded as the gate's decision, not checked).

(About 440 lines: eight verbs, each beside the view it returns, so that a verb has one home; the
largest piece is ``show``'s lineage tree.)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from rich.tree import Tree

from control_plane import registry
from control_plane.artifacts import get_store
from control_plane.errors import MlctlError, PolicyViolation
from control_plane.output import info, table
from control_plane.query import since_cutoff
from control_plane.registry import lineage as lin
from control_plane.services.context import Context

if TYPE_CHECKING:
    from blueprints.schema import Environment
    from control_plane.optimize.service import OptimizeResult
    from control_plane.registry.export import BundleVerifyResult, ExportResult
    from control_plane.validate.gate import ValidationPolicy, ValidationReport

__all__ = [
    "ExportView", "OptimizeView", "RegisterView", "ShowView", "SignView", "ValidateView", "VerifyView",
    "VersionsView", "export", "list_versions", "optimize", "optimize_allowed", "register", "show", "sign", "validate", "verify",
]

Progress = Callable[[str], None]


def _ref(name: str, version: str) -> str:
    lin.check_name(name)
    lin.check_version(version)
    return f"{name}:{version}"


def _default_environment(ctx: Context) -> Environment:
    """The environment of ``--blueprint`` (``ctx.settings.blueprint``) or the default blueprint."""
    return ctx.environment(str(ctx.settings.default_blueprint))


# --- register ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegisterView:
    version: registry.ModelVersion

    def as_json(self) -> Any:
        return {**self.version.as_dict(), "created": self.version.created}

    def renderables(self) -> Iterator[Any]:
        mv = self.version
        verb = "registered" if mv.created else "already registered with identical bytes (no change):"
        yield f"{verb} [bold]{mv.ref}[/] root {mv.root_digest} ({len(mv.files)} files) at {mv.artifact_uri}"
        if mv.created:
            yield f"next: mlctl model sign {mv.ref}"


def register(
    ctx: Context,
    name: str,
    version: str,
    path: str | Path,
    *,
    datasets: Sequence[str] = (),
    features: Sequence[str] = (),
    code_commit: str | None = None,
    code_pin: dict[str, Any] | None = None,
    config: str | Path | None = None,
    params: str | Path | dict[str, Any] | None = None,
    metrics: str | Path | dict[str, Any] | None = None,
    parent: str | None = None,
    classification: str = "internal",
    store: str | None = None,
) -> RegisterView:
    """Register ``path`` as NAME:VERSION with its lineage (``model.register``). ``store``: ``local``
    or ``s3`` (the ``--blueprint`` environment's bucket); default: ``MLCTL_ARTIFACT_STORE`` or local.
    ``code_pin``: the code pin resolved where the code is (the CLI's machine, for a server upload)."""
    ref = _ref(name, version)
    if classification not in lin.CLASSIFICATIONS:  # a usage error comes before a permission check
        raise lin.LineageError(f"--classification {classification!r} is not known",
                               hint=f"use one of: {', '.join(lin.CLASSIFICATIONS)}")
    ctx.authorize("model.register", ref)
    with ctx.acting():
        artifact_store = None
        if store:
            artifact_store = get_store(store, env=_default_environment(ctx) if store == "s3" else None)
        mv = registry.register(
            name, version, path, datasets=datasets, features=features, code_commit=code_commit, code_pin=code_pin,
            config=config,
            params=params, metrics=metrics, parent=parent, classification=classification, store=artifact_store,
        )
    return RegisterView(mv)


# --- show / list ---------------------------------------------------------------------------------


def _tree(mv: registry.ModelVersion) -> Tree:
    sig = mv.signature
    tree = Tree(f"[bold]{mv.ref}[/]  {mv.root_digest}")
    tree.add(f"classification: {mv.classification}")
    tree.add(f"registered by {mv.registered_by} at {mv.created_at}")
    tree.add(f"artifact: {mv.artifact_uri}")
    if sig.signed:
        tree.add(f"signed by {sig.signed_by} at {sig.signed_at} with {sig.signer_kind} key {sig.key_id}"
                 + (" (provenance signed)" if sig.provenance_signed else ""))
    else:
        tree.add("[yellow]not signed[/]")
    lineage = tree.add("lineage")
    lin_doc = mv.lineage
    for ds in lin_doc.get("datasets", []):
        lineage.add(f"dataset {ds['ref']}")
    for ft in lin_doc.get("features", []):
        lineage.add(f"features {ft['name']}@{ft['version']}")
    code = lin_doc.get("code", {})
    code_text = f"code {code.get('commit', 'unknown')}"
    if code.get("repository"):
        code_text += f" ({code['repository']})"
    if code.get("dirty"):
        code_text += " [yellow]uncommitted changes[/]"
    lineage.add(code_text)
    if lin_doc.get("config"):
        lineage.add(f"config {lin_doc['config']['file']} sha256:{lin_doc['config']['sha256']}")
    for key in ("params", "metrics"):
        if lin_doc.get(key):
            branch = lineage.add(key)
            for k, v in sorted(lin_doc[key].items()):
                branch.add(f"{k} = {v}")
    for key in ("parent", "derived_from"):
        if lin_doc.get(key):
            lineage.add(f"{key.replace('_', ' ')} {lin_doc[key]['ref']} (sha256:{lin_doc[key]['root'][:16]}…)")
    if lin_doc.get("extra"):
        branch = lineage.add("derivation")
        for k, v in sorted(lin_doc["extra"].items()):
            branch.add(f"{k} = {v}")
    files = tree.add(f"files ({len(mv.files)})")
    for rel, digest in sorted(mv.files.items()):
        files.add(f"{rel}  sha256:{digest[:16]}…")
    return tree


@dataclass(frozen=True)
class ShowView:
    version: registry.ModelVersion
    overview: dict[str, Any]  # services.model_overview: the version plus siblings, derived, approvals, deployments

    def as_json(self) -> Any:
        return self.overview

    def renderables(self) -> Iterator[Any]:
        view, mv = self.overview, self.version
        tree = _tree(mv)
        tree.add("siblings: " + (", ".join(f"{mv.name}:{v}" for v in view["siblings"]) or "none"))
        tree.add("derived: " + (", ".join(d["ref"] for d in view["derived"]) or "none"))
        appr = tree.add(f"approvals ({len(view['approvals'])})")
        for a in view["approvals"]:
            appr.add(f"{a['env']}: {a['approver']} at {a['created_at']}")
        dep = tree.add(f"deployments ({len(view['deployments'])})")
        for d in view["deployments"]:
            dep.add(f"{d['service']} in {d['environment']}: {d['state']} ({d['release']})"
                    + (" [green]live[/]" if d["live"] else ""))
        yield tree


def show(ctx: Context, ref: str) -> ShowView:
    """NAME:V with its digests, signature, lineage, siblings, derived versions, approvals, deployments."""
    from control_plane.services.model_overview import overview  # lazy: one verb's code, kept off CLI start-up

    name, version = registry.parse_ref(ref)
    view = overview(name, version)
    return ShowView(registry.get_version(name, version), view)


@dataclass(frozen=True)
class VersionsView:
    versions: Sequence[registry.ModelVersion]

    def as_json(self) -> Any:
        return [v.as_dict() for v in self.versions]

    def renderables(self) -> Iterator[Any]:
        yield table(
            "Model versions", ["model", "version", "root", "class", "signed", "registered by", "created"],
            [(v.name, v.version, v.root_digest, v.classification,
              v.signature.signer_kind if v.signature.signed else "no", v.registered_by, v.created_at)
             for v in self.versions],
        )


def list_versions(ctx: Context, name: str | None = None, *, actor: str | None = None,
                  since: str | None = None) -> VersionsView:
    """Registered versions (of ``name``), optionally only by ``actor`` or newer than ``since``."""
    cutoff = since_cutoff(since)
    return VersionsView([v for v in registry.list_versions(name)
                         if (actor is None or v.registered_by == actor)
                         and (cutoff is None or v.created_at >= cutoff)])


# --- sign / verify / export ----------------------------------------------------------------------


@dataclass(frozen=True)
class SignView:
    version: registry.ModelVersion

    def as_json(self) -> Any:
        return self.version.as_dict()

    def renderables(self) -> Iterator[Any]:
        mv = self.version
        if mv.signature.signer_kind == "local-dev":
            info("[yellow]note:[/] signed with the local DEVELOPMENT key; use --signer kms or pkcs11 for production")
        yield (f"signed [bold]{mv.ref}[/] ({mv.root_digest}) with {mv.signature.signer_kind} key "
               f"{mv.signature.key_id}; provenance signed")


def sign(ctx: Context, name: str, version: str, *, signer: str = "local") -> SignView:
    """Sign NAME:V (OpenSSF bundle + signed provenance) with ``signer`` (local, kms, pkcs11):
    ``model.sign``. ``kms`` uses the ``--blueprint`` environment's signing key."""
    ref = _ref(name, version)
    ctx.authorize("model.sign", ref)
    with ctx.acting():
        env = _default_environment(ctx) if signer == "kms" else None
        return SignView(registry.sign(name, version, signer_kind=signer, env=env))


@dataclass(frozen=True)
class VerifyView:
    result: registry.VerifyResult | BundleVerifyResult

    def as_json(self) -> Any:
        return {"verified": True, **self.result.as_dict()}

    def renderables(self) -> Iterator[Any]:
        r = self.result
        if isinstance(r, registry.VerifyResult):
            yield (f"[green]verified[/] {r.ref}: {r.files} files from {r.source} match {r.root_digest}, signed "
                   f"by {r.key_id} ({r.signer_kind}; key from {r.key_source}); provenance {r.provenance}")
        else:
            yield (f"[green]verified[/] {r.directory}: {r.files} files match {r.bundle} "
                   f"({r.root_digest}{', ' + r.ref if r.ref else ''}), signed by {r.key_id} "
                   f"(key from {r.key_source})")


def verify(ctx: Context, ref: str | None = None, *, path: Path | None = None, public_key: Path | None = None,
           bundle: Path | None = None) -> VerifyView:
    """Verify model bytes (the store's copy, or ``path``) against the registered signature, or with
    ``bundle`` against a signature file with no registry needed. Raises VerificationFailed naming
    the file that differs."""
    from control_plane.registry.export import verify_bundle  # lazy: one verb's code, kept off CLI start-up

    pem = None
    if public_key is not None:
        try:
            pem = public_key.read_bytes()
        except OSError as exc:
            raise MlctlError(f"--key {public_key}: cannot read it ({exc})", hint="pass a PEM public key file") from None
    with ctx.acting():
        if bundle is not None:
            return VerifyView(verify_bundle(bundle, path=path, public_key_pem=pem, ref=ref))
        if ref is None:
            raise MlctlError("missing NAME:VERSION", hint="mlctl model verify NAME:V, or --bundle FILE --public-key PEM",
                             exit_code=2)
        name, version = registry.parse_ref(ref)
        return VerifyView(registry.verify(name, version, path=path, public_key_pem=pem))


@dataclass(frozen=True)
class ExportView:
    result: ExportResult

    def as_json(self) -> Any:
        return self.result.as_dict()

    def renderables(self) -> Iterator[Any]:
        r = self.result
        yield (f"exported [bold]{r.ref}[/] ({r.root_digest}, {r.files} files, verified) to {r.directory}; "
               f"signature {r.signature}; public key {r.public_key} ({r.key_id})")
        yield Text(f"verify anywhere: {r.upstream_command()}")  # a Text: no markup in the command


def export(ctx: Context, ref: str, directory: Path, *, public_key_out: Path | None = None) -> ExportView:
    """Write the exact registered bytes of NAME:V with model.sig and the signer's public key, verified
    on the way out (``model.export``)."""
    from control_plane.registry.export import (
        export as export_version,  # lazy: one verb's code, kept off CLI start-up
    )

    name, version = registry.parse_ref(ref)
    ctx.authorize("model.export", _ref(name, version))
    with ctx.acting():
        return ExportView(export_version(name, version, directory, public_key_out=public_key_out))


# --- optimize ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OptimizeView:
    result: OptimizeResult

    def as_json(self) -> Any:
        return self.result.__dict__

    def renderables(self) -> Iterator[Any]:
        r = self.result
        yield (f"[green]optimized[/] {r.source} → [bold]{r.derived}[/] ({r.target}, {r.precision}, "
               f"build: {r.build})")
        if r.parity:
            yield (f"parity: max abs error {r.parity['max_abs_error']:.3g}, top-1 agreement "
                   f"{r.parity['top1_agreement']}")


def optimize(
    ctx: Context,
    ref: str,
    *,
    environment: Environment,
    target: str = "tensorrt",
    precision: str = "fp16",
    signer: str = "local",
    kube_api_client: Any = None,
    in_process: bool | None = None,
    timeout: float | None = None,
    progress: Progress | None = None,
) -> OptimizeView:
    """Optimize NAME:V for ``environment``'s GPUs and register + sign the result as a derived version.

    The verb registers and signs a new version, so it needs ``model.register`` and ``model.sign``
    besides ``model.optimize``: all three are checked here, before any build starts."""
    from control_plane.optimize.service import (
        optimize as run,  # lazy: onnx + tritonclient (~1 s), one verb; CLI start-up
    )

    name, version = registry.parse_ref(optimize_allowed(ctx, ref, target=target, precision=precision))
    with ctx.acting():
        return OptimizeView(run(name, version, env=environment, target=target, precision=precision,
                                signer_kind=signer, kube_api_client=kube_api_client, in_process=in_process,
                                timeout=timeout, progress=progress))


def optimize_allowed(ctx: Context, ref: str, *, target: str, precision: str) -> str:
    """``optimize``'s checks, before any build: the options, and ``model.optimize``, ``model.register``
    and ``model.sign`` on ``ctx``'s identity (denials audited). The server runs them in the request
    that starts a background build, so a refusal is its answer (403), not a failed build."""
    from control_plane.optimize.service import (
        check_options,  # lazy: onnx + tritonclient (~1 s), one verb; CLI start-up
    )

    name, version = registry.parse_ref(ref)
    ref = _ref(name, version)
    check_options(target, precision)
    for action in ("model.optimize", "model.register", "model.sign"):
        ctx.authorize(action, ref)
    return ref


# --- validate ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ValidateView:
    report: ValidationReport

    def as_json(self) -> Any:
        return self.report.to_dict()

    def renderables(self) -> Iterable[Any]:
        report = self.report
        rows = [
            (c.name, c.status.upper(), "" if c.value is None else f"{c.value:.4g}",
             "" if c.threshold is None else f"{c.threshold:.4g}", c.detail)
            for c in report.checks
        ]
        yield table(
            f"Validation of {report.candidate}"
            + (f" against {report.baseline}" if report.baseline else " (no baseline)"),
            ["check", "status", "value", "threshold", "detail"],
            rows,
        )
        yield "[green]PASS[/]" if report.passed else "[bold red]FAIL[/]"

    def failure(self) -> MlctlError | None:
        """The error a failed gate exits with (4), after its report is shown."""
        report = self.report
        if report.passed:
            return None
        return PolicyViolation(
            f"validation gate failed for {report.candidate}: " + ", ".join(c.name for c in report.failed),
            hint="fix the model (or the evaluation data) and register a new version; tolerances are flags "
            "(--accuracy-tolerance, --min-stability, ...) if the policy allows",
        )


def validate(
    ctx: Context,
    ref: str | None = None,
    *,
    env: str | None = None,
    baseline: str | None = None,
    model_dir: Path | None = None,
    baseline_dir: Path | None = None,
    eval_set: Path | None = None,
    schema: Path | None = None,
    policy: ValidationPolicy | None = None,
) -> ValidateView:
    """The validation gate on a registered NAME:V (baseline: what is live in ``env``, or
    ``baseline``) or on unregistered directories. Audited and emitted as the gate's decision; a
    failed gate is a view whose ``failure()`` is the error to exit with."""
    from control_plane.validate import gate  # lazy: one verb's code, kept off CLI start-up

    with ctx.acting():
        if model_dir is not None:
            if ref is not None:
                raise MlctlError("give NAME:VERSION or --model-dir, not both", hint="drop one of them", exit_code=2)
            schema_doc = None
            if schema is not None:
                try:
                    schema_doc = json.loads(schema.read_text())
                except (OSError, json.JSONDecodeError) as exc:
                    raise MlctlError(f"--schema {schema}: cannot read JSON ({exc})",
                                     hint="give the schema JSON file", exit_code=2) from None
            cand = gate.Candidate(ref=str(model_dir), model_dir=model_dir, eval_path=eval_set, schema=schema_doc)
            base = gate.Candidate(ref=str(baseline_dir), model_dir=baseline_dir) if baseline_dir else None
            report = gate.validate_paths(cand, base, policy=policy, environment=env)
            gate.record_decision(report)
            return ValidateView(report)
        if ref is None:
            raise MlctlError("which model? give NAME:VERSION (or --model-dir DIR)",
                             hint="mlctl model validate fraud:3 --env prod", exit_code=2)
        if env is None:
            raise MlctlError("--env is required with NAME:VERSION",
                             hint="--env prod (its production version is the baseline)", exit_code=2)
        name, version = gate.parse_ref(ref)
        return ValidateView(gate.validate_version(name, version, env, baseline=baseline, policy=policy))
