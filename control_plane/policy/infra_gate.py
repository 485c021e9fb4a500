"""The infra policy gate behind ``mlctl infra check``.

checkov (broad, community checks) plus our Rego guardrails (UAE residency, KMS encryption, no
public endpoints, no open ingress) over every synthesized stack; each finding either matches a
justified entry in ``policies/skips.yaml`` or fails the gate.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from control_plane.errors import InfraError
from control_plane.infra.synth import synth
from control_plane.policy.checkov import run_checkov
from control_plane.policy.findings import Finding, GateReport, StackFile
from control_plane.policy.guardrails import run_guardrails
from control_plane.policy.skips import apply_skips, load_skips
from control_plane.settings import POLICIES_DIR

__all__ = ["GateReport", "check_blueprint", "check_documents", "check_stacks", "stacks_in", "to_stack_files"]

# Located through settings (not ``import policies``): policies/ is data, and an editable install
# made before it had an __init__ maps it as a namespace package.
INFRA_POLICIES_DIR = POLICIES_DIR / "infra"
SKIPS_FILE = POLICIES_DIR / "skips.yaml"

_PROVIDER_CLOUD = {"aws": "aws", "azurerm": "azure"}


class _SynthesizedLike(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def path(self) -> Path: ...


def _cloud_of(path: Path, default: str = "aws") -> str:
    try:
        providers = json.loads(path.read_text(encoding="utf-8")).get("provider") or {}
    except (OSError, ValueError, AttributeError):
        return default
    for provider, cloud in _PROVIDER_CLOUD.items():
        if provider in providers:
            return cloud
    return default


def to_stack_files(stacks: Iterable[_SynthesizedLike]) -> list[StackFile]:
    """Adapt ``control_plane.infra.synth.SynthesizedStack`` (or anything with name and path)."""
    out: list[StackFile] = []
    for s in stacks:
        path = Path(s.path)
        cloud = str(getattr(s, "cloud", "") or _cloud_of(path))
        out.append(StackFile(name=s.name, path=path, cloud=cloud))
    return out


def stacks_in(directory: Path) -> list[StackFile]:
    """Stacks of an existing synthesis: ``DIR/stacks/*/cdk.tf.json`` (cdktf.out), ``DIR/*/cdk.tf.json``
    or a single ``cdk.tf.json``."""
    directory = Path(directory)
    if directory.is_file():
        return [StackFile(name=directory.parent.name, path=directory, cloud=_cloud_of(directory))]
    for pattern in ("stacks/*/cdk.tf.json", "*/cdk.tf.json", "cdk.tf.json"):
        found = sorted(directory.glob(pattern))
        if found:
            return [StackFile(name=p.parent.name, path=p, cloud=_cloud_of(p)) for p in found]
    raise InfraError(
        f"no synthesized stacks (cdk.tf.json) under {directory}",
        hint="point --stacks-dir at a cdktf.out directory, or use --blueprint FILE to synthesize first",
    )


def check_stacks(
    stacks: Sequence[StackFile],
    *,
    blueprint: str = "",
    skips_path: Path = SKIPS_FILE,
    policy_dir: Path = INFRA_POLICIES_DIR,
    with_checkov: bool = True,
) -> GateReport:
    """Run the gate over already-synthesized stacks."""
    if not stacks:
        raise InfraError("there are no stacks to check", hint="synthesize the blueprint first")
    skips = load_skips(skips_path)  # read first: a broken skip file should fail before a long run
    findings: list[Finding] = run_guardrails(list(stacks), policy_dir)
    version = ""
    if with_checkov:
        checkov_findings, version = run_checkov(list(stacks))
        findings += checkov_findings
    findings.sort(key=lambda f: (f.stack, f.resource, f.source, f.id))
    stale = apply_skips(findings, skips, {s.name: s.cloud for s in stacks})
    return GateReport(
        blueprint=blueprint,
        stacks=[s.name for s in stacks],
        findings=findings,
        stale_skips=stale,
        checkov_version=version,
        skips_file=str(skips_path),
    )


def check_blueprint(
    blueprint_path: str | Path, *, outdir: str | Path | None = None, **options: Any
) -> GateReport:
    """Synthesize ``blueprint_path`` (validating it first) and run the gate over every stack."""
    stacks = to_stack_files(synth(blueprint_path, outdir))
    return check_stacks(stacks, blueprint=str(blueprint_path), **options)


def check_documents(
    documents: Mapping[str, dict[str, Any]],
    *,
    blueprint: str = "",
    skips_path: Path = SKIPS_FILE,
    policy_dir: Path = INFRA_POLICIES_DIR,
) -> GateReport:
    """The Rego guardrails over Terraform-shaped documents no synth wrote: the Pulumi backend's
    resource list (``stacks/pulumi/inventory.py``), one document per environment. checkov is not
    run here: it reads Terraform files, and these are not ones terraform would apply."""
    with tempfile.TemporaryDirectory(prefix="mlctl-gate-") as tmp:
        stacks = []
        for name, doc in documents.items():
            path = Path(tmp) / f"{name}.tf.json"
            path.write_text(json.dumps(doc), encoding="utf-8")
            stacks.append(StackFile(name=name, path=path, cloud=_cloud_of(path)))
        report = check_stacks(stacks, blueprint=blueprint, skips_path=skips_path, policy_dir=policy_dir,
                              with_checkov=False)
    return report
