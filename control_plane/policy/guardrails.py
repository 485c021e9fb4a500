"""Our own Rego guardrails (``policies/infra/*.rego``) over each synthesized stack's JSON.

Every package in that folder that defines a ``deny`` set is a guardrail; adding a file (e.g.
``azure_encryption.rego`` for ``azurerm_*`` resources) adds rules with no code change here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from blueprints.residency import ALLOWED_REGIONS
from control_plane.errors import InfraError
from control_plane.policy.findings import Finding, StackFile
from control_plane.policy.rego import RegoPolicy, RegoPolicyError, policy_files

_PACKAGE = re.compile(r"^\s*package\s+([A-Za-z_][\w.]*)", re.MULTILINE)


def residency_data() -> dict[str, Any]:
    """The allow-list, passed as data so the Rego and blueprints/residency.py cannot disagree."""
    return {"residency": {"allowed": {cloud: list(regions) for cloud, regions in ALLOWED_REGIONS.items()}}}


def guardrail_packages(files: list[Path]) -> list[str]:
    packages: list[str] = []
    for path in files:
        match = _PACKAGE.search(path.read_text(encoding="utf-8"))
        if match is None:
            raise RegoPolicyError(
                f"{path} has no package declaration", hint="start the file with `package infra.<name>`"
            )
        packages.append(match.group(1))
    return sorted(set(packages))


def read_stack(stack: StackFile) -> dict[str, Any]:
    try:
        doc = json.loads(stack.path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InfraError(
            f"stack {stack.name}: cannot read {stack.path}: {exc}",
            hint="re-run `mlctl infra synth --blueprint FILE` to regenerate the stack",
        ) from None
    if not isinstance(doc, dict):
        raise InfraError(f"stack {stack.name}: {stack.path} is not a JSON object", hint="re-run synth")
    return doc


def run_guardrails(stacks: list[StackFile], policy_dir: Path) -> list[Finding]:
    files = policy_files(policy_dir)
    policy = RegoPolicy(files, data=residency_data())
    packages = guardrail_packages(files)
    findings: list[Finding] = []
    for stack in stacks:
        doc = read_stack(stack)
        for package in packages:
            denies = policy.query(f"data.{package}.deny", doc, default=[])
            if not isinstance(denies, list):
                raise RegoPolicyError(
                    f"data.{package}.deny is not a set", hint="declare it as `deny contains {...} if {...}`"
                )
            for d in denies:
                if not isinstance(d, dict) or not {"id", "resource", "message"} <= d.keys():
                    raise RegoPolicyError(
                        f"data.{package}.deny holds {d!r}, not an object with id, resource and message",
                        hint="build deny entries with lib.finding(id, resource, message)",
                    )
                findings.append(
                    Finding(
                        source="rego",
                        id=str(d["id"]),
                        stack=stack.name,
                        resource=str(d["resource"]),
                        message=str(d["message"]),
                        file=str(stack.path),
                    )
                )
    return findings
