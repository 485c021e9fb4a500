"""checkov over the synthesized stacks, as a subprocess from its own virtualenv.

checkov pins an older boto3/networkx than our stack, so it lives in ``.venv-checkov`` (created by
``scripts/setup.sh``); ``MLCTL_CHECKOV`` points elsewhere. It runs offline: no guideline mapping
(``BC_SKIP_MAPPING``), no external checks download, no platform upload.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from control_plane.errors import InfraError, ToolMissing
from control_plane.policy.findings import Finding, StackFile
from control_plane.policy.guardrails import read_stack
from control_plane.settings import PROJECT_ROOT
from control_plane.settings import current as settings

CHECKOV_TIMEOUT_S = 600


def checkov_executable() -> Path:
    override = settings().checkov
    if override:
        path = Path(override).expanduser()
        if path.is_file() and os.access(path, os.X_OK):
            return path
        raise ToolMissing(
            f"MLCTL_CHECKOV={override} is not an executable file",
            hint="point MLCTL_CHECKOV at a checkov binary, or unset it to use .venv-checkov",
        )
    local = PROJECT_ROOT / ".venv-checkov" / "bin" / "checkov"
    if local.is_file():
        return local
    found = shutil.which("checkov")
    if found:
        return Path(found)
    raise ToolMissing(
        "checkov is not installed (looked in .venv-checkov/bin and on PATH)",
        hint="run scripts/setup.sh (it creates .venv-checkov with checkov 3.3.30), or set MLCTL_CHECKOV",
    )


def _checkable_copy(doc: dict[str, Any]) -> dict[str, Any]:
    """checkov cannot parse CDKTF JSON holding terraform.required_version (checkov issue #7454)."""
    copy = dict(doc)
    terraform = copy.get("terraform")
    if isinstance(terraform, dict) and "required_version" in terraform:
        copy["terraform"] = {k: v for k, v in terraform.items() if k != "required_version"}
    return copy


_BLOCK_LINE = re.compile(r'^(?P<indent> *)"(?P<key>(?:[^"\\]|\\.)*)": \{$')


def _address_by_line(text: str) -> dict[int, str]:
    """1-based line of each ``"name": {`` under resource/data -> its address.

    checkov names CDKTF resources ``resource.<name>`` without the type; we wrote the file with
    ``indent=2``, so the nesting depth of each key tells section, type and name.
    """
    out: dict[int, str] = {}
    section = rtype = None
    for lineno, line in enumerate(text.splitlines(), start=1):
        m = _BLOCK_LINE.match(line)
        if not m:
            continue
        depth, key = len(m.group("indent")) // 2, m.group("key")
        if depth == 1:
            section, rtype = key, None
        elif depth == 2 and section in ("resource", "data"):
            rtype = key
        elif depth == 3 and section in ("resource", "data") and rtype:
            out[lineno] = f"{rtype}.{key}" if section == "resource" else f"data.{rtype}.{key}"
    return out


def run_checkov(stacks: list[StackFile]) -> tuple[list[Finding], str]:
    """Failed checkov checks over all stacks (one checkov process), and checkov's version."""
    exe = checkov_executable()
    with tempfile.TemporaryDirectory(prefix="mlctl-checkov-") as tmp:
        root = Path(tmp)
        lines: dict[str, dict[int, str]] = {}
        by_dir: dict[str, StackFile] = {}
        for stack in stacks:
            text = json.dumps(_checkable_copy(read_stack(stack)), indent=2)
            (root / stack.name).mkdir()
            (root / stack.name / "cdk.tf.json").write_text(text, encoding="utf-8")
            lines[stack.name] = _address_by_line(text)
            by_dir[stack.name] = stack
        env = {
            **os.environ,
            "BC_SKIP_MAPPING": "TRUE",
            "CKV_SKIP_PACKAGE_UPDATE_CHECK": "TRUE",  # its banner asks PyPI for a newer version
            "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false",
            "LOG_LEVEL": "ERROR",
        }
        env.pop("BC_API_KEY", None)
        cmd = [
            str(exe),
            "--directory",
            str(root),
            "--framework",
            "terraform_json",
            "--output",
            "json",
            "--skip-download",
            "--compact",
            "--quiet",
        ]
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, env=env, timeout=CHECKOV_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            raise InfraError(
                f"checkov ran longer than {CHECKOV_TIMEOUT_S}s", hint="check the machine's load and retry"
            ) from None
        except OSError as exc:
            raise ToolMissing(f"cannot run checkov at {exe}: {exc}", hint="re-run scripts/setup.sh") from None
        if proc.returncode not in (0, 1):
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            raise InfraError(
                f"checkov failed (exit {proc.returncode}): {' | '.join(tail)}",
                hint="run the same checkov command by hand on cdktf.out to see the full error",
            )
        try:
            report = json.loads(proc.stdout)
        except json.JSONDecodeError:
            raise InfraError(
                "checkov printed output that is not JSON",
                hint="re-run scripts/setup.sh to repair .venv-checkov",
            ) from None
    return _parse(report, lines, by_dir)


def _parse(
    report: Any, lines: dict[str, dict[int, str]], stacks: dict[str, StackFile]
) -> tuple[list[Finding], str]:
    reports = report if isinstance(report, list) else [report]
    findings: list[Finding] = []
    version = ""
    for rep in reports:
        if not isinstance(rep, dict):
            continue
        summary = rep.get("summary", rep)
        version = str(summary.get("checkov_version", version)) if isinstance(summary, dict) else version
        if isinstance(summary, dict) and summary.get("parsing_errors"):
            raise InfraError(
                f"checkov could not parse {summary['parsing_errors']} stack file(s)",
                hint="check the synthesized JSON with `terraform validate` in cdktf.out/stacks/<stack>",
            )
        for check in (rep.get("results") or {}).get("failed_checks", []):
            stack_name = Path(str(check.get("file_path", ""))).parent.name
            stack = stacks.get(stack_name)
            resource = str(check.get("resource", ""))
            line_range = check.get("file_line_range") or [0, 0]
            if resource.startswith(("resource.", "data.")) and resource.count(".") == 1:
                resource = lines.get(stack_name, {}).get(int(line_range[0]), resource)
            findings.append(
                Finding(
                    source="checkov",
                    id=str(check.get("check_id", "")),
                    stack=stack_name,
                    resource=resource,
                    message=str(check.get("check_name", "")),
                    file=f"{stack.path if stack else stack_name}:{line_range[0]}",
                )
            )
    return findings, version
