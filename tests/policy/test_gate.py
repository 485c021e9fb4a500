"""Acceptance: ``mlctl infra check`` over the real synthesized stacks of both AWS blueprints
(real CDKTF synth, real checkov, real Rego), and injected violations that must fail it by name."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from control_plane.errors import ToolMissing
from control_plane.policy.findings import StackFile
from control_plane.policy.infra_gate import check_stacks
from tests.cli_runner import Result, run_mlctl
from tests.policy.conftest import BLUEPRINTS, copy_stacks, edit_stack, only

pytestmark = pytest.mark.timeout(600)


def _mlctl(*args: str, env: dict[str, str] | None = None) -> Result:
    return run_mlctl(*args, env=env, timeout=600)


@pytest.mark.parametrize("blueprint", BLUEPRINTS)
def test_blueprint_passes_with_no_unexplained_findings(
    blueprint: str, synthesized: Callable[[str], list[StackFile]]
) -> None:
    stacks_root = synthesized(blueprint)[0].path.parents[2]  # <out>/stacks/<stack>/cdk.tf.json
    proc = _mlctl("infra", "check", "--stacks-dir", str(stacks_root), "--output", "json")
    assert "Traceback" not in proc.stderr
    report = json.loads(proc.stdout)
    assert len(report["stacks"]) >= 4
    assert report["checkov_version"], "checkov must actually have run"
    unexplained = [
        f"{f['source']} {f['id']} {f['stack']} {f['resource']}: {f['message']}"
        for f in report["findings"]
        if f["status"] == "FAIL"
    ]
    assert unexplained == [], "\n".join(unexplained)
    assert proc.returncode == 0, proc.stderr
    # every skip used carries its reason, and the skip file has no dead entries
    assert all(f["skipped_reason"] for f in report["findings"])
    assert report["stale_skips"] == []


def _public_bucket(doc: dict[str, Any]) -> None:
    name, _ = only(doc, "aws_s3_bucket", "model")
    _, pab = only(doc, "aws_s3_bucket_public_access_block", "model")
    pab.update(
        block_public_acls=False,
        block_public_policy=False,
        ignore_public_acls=False,
        restrict_public_buckets=False,
    )
    doc["resource"]["aws_s3_bucket_acl"] = {
        "public": {"bucket": f"${{aws_s3_bucket.{name}.id}}", "acl": "public-read"}
    }


def _provider_in_ireland(doc: dict[str, Any]) -> None:
    doc["provider"]["aws"][0]["region"] = "eu-west-1"


def _open_ingress(doc: dict[str, Any]) -> None:
    sg, _ = only(doc, "aws_security_group", "serving")
    doc["resource"]["aws_vpc_security_group_ingress_rule"] = {
        "ssh_from_anywhere": {
            "security_group_id": f"${{aws_security_group.{sg}.id}}",
            "cidr_ipv4": "0.0.0.0/0",
            "from_port": 22,
            "to_port": 22,
            "ip_protocol": "tcp",
        }
    }


def _plain_log_group(doc: dict[str, Any]) -> None:
    _, group = only(doc, "aws_cloudwatch_log_group")
    del group["kms_key_id"]


INJECTIONS = [
    # (what, stack suffix, change, rego rule that must name it, resource type it names, checkov id or None)
    (
        "public-bucket",
        "-registry",
        _public_bucket,
        "UAE-PUB-004",
        "aws_s3_bucket_public_access_block",
        "CKV_AWS_53",
    ),
    ("provider-eu-west-1", "-network", _provider_in_ireland, "UAE-RES-001", "provider.aws", None),
    (
        "ingress-0.0.0.0/0",
        "-network",
        _open_ingress,
        "UAE-ING-003",
        "aws_vpc_security_group_ingress_rule",
        None,
    ),
    (
        "unencrypted-log-group",
        "-network",
        _plain_log_group,
        "UAE-ENC-003",
        "aws_cloudwatch_log_group",
        "CKV_AWS_158",
    ),
]


def test_injected_violations_fail_the_gate_each_by_name(
    tmp_path: Path, synthesized: Callable[[str], list[StackFile]]
) -> None:
    stacks = copy_stacks(synthesized("uae-local"), tmp_path)
    edited = {edit_stack(stacks, suffix, change) for _, suffix, change, *_ in INJECTIONS}
    report = check_stacks(sorted(edited, key=lambda s: s.name), blueprint="injected")  # one checkov run
    assert not report.passed

    def rtype(resource: str) -> str:
        return resource.split(".")[0] if resource.startswith("aws_") else resource

    failing = {(f.id, rtype(f.resource)) for f in report.unexplained}
    for what, _, _, rule, resource_type, checkov_id in INJECTIONS:
        assert (rule, resource_type) in failing, (what, failing)
        if checkov_id:  # checkov agrees where it has a check for it
            assert (checkov_id, resource_type) in failing, (what, failing)


def test_cli_names_injected_violations_and_exits_4(
    tmp_path: Path, synthesized: Callable[[str], list[StackFile]]
) -> None:
    stacks = copy_stacks(synthesized("uae-local"), tmp_path)
    edit_stack(stacks, "-network", _provider_in_ireland)
    edit_stack(stacks, "-network", _plain_log_group)
    proc = _mlctl("infra", "check", "--stacks-dir", str(tmp_path))
    assert proc.returncode == 4, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "Infra policy findings" in proc.stdout and "FAIL:" in proc.stdout
    assert "UAE-RES-001" in proc.stdout and "UAE-ENC-003" in proc.stdout
    assert "error: infra policy gate failed" in proc.stderr and "fix:" in proc.stderr


def test_missing_checkov_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLCTL_CHECKOV", str(tmp_path / "no-checkov"))
    stack = tmp_path / "s" / "cdk.tf.json"
    stack.parent.mkdir()
    stack.write_text(json.dumps({"provider": {"aws": [{"region": "me-central-1"}]}}))
    with pytest.raises(ToolMissing) as err:
        check_stacks([StackFile(name="s", path=stack)])
    assert "MLCTL_CHECKOV" in err.value.message and err.value.hint
