"""Fast checks with no jsii and no terraform run: plan parsing, CLI config, error shapes."""

from __future__ import annotations

from pathlib import Path

import pytest

from control_plane.errors import InfraError
from control_plane.infra import terraform
from control_plane.infra.lifecycle import drift_items, summarize
from modules.aws.common import log_retention
from modules.aws.network import split_cidr
from tests.cli_runner import run_mlctl

PLAN = {
    "relevant_attributes": [{"resource": "aws_ecr_repository.repo", "attribute": ["image_tag_mutability"]}],
    "resource_drift": [
        {"address": "aws_iam_role.r", "change": {  # changed by our own attachment: not relevant
            "actions": ["update"], "before": {"managed_policy_arns": []}, "after": {"managed_policy_arns": ["x"]}}},
        {"address": "aws_ecr_repository.repo", "change": {
            "actions": ["update"],
            "before": {"name": "triton", "image_tag_mutability": "IMMUTABLE"},
            "after": {"name": "triton", "image_tag_mutability": "MUTABLE"},
        }},
    ],
    "resource_changes": [
        {"address": "aws_ecr_repository.repo", "change": {
            "actions": ["update"], "before": {"image_tag_mutability": "MUTABLE"},
            "after": {"image_tag_mutability": "IMMUTABLE"}}},
        {"address": "aws_vpc.vpc", "change": {"actions": ["no-op"], "before": {}, "after": {}}},
        {"address": "aws_s3_bucket.b", "change": {"actions": ["delete", "create"], "before": {"bucket": "a"},
                                                  "after": {"bucket": "b"}, "after_unknown": {"arn": True}}},
    ],
}


def test_drift_items_name_resource_and_attributes() -> None:
    items = drift_items("env-registry", PLAN)
    assert [(i.address, i.attributes, i.source) for i in items] == [
        ("aws_ecr_repository.repo", ["image_tag_mutability"], "changed outside terraform"),
        ("aws_s3_bucket.b", ["arn", "bucket"], "planned to converge"),
    ]
    assert summarize(PLAN) == "1 to replace, 1 to update"
    assert drift_items("x", {"resource_changes": PLAN["resource_changes"][1:2]}) == []


def test_cli_config_uses_the_mirror_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mirror = tmp_path / "mirror"
    (mirror / "registry.terraform.io").mkdir(parents=True)
    monkeypatch.setenv("MLCTL_TF_PROVIDER_MIRROR", str(mirror))
    text = terraform.cli_config().read_text()
    assert "filesystem_mirror" in text and str(mirror) in text and "direct" in text
    assert "plugin_cache_dir" not in text  # terraform links from the mirror; a cache would copy 700 MB
    env = terraform.terraform_env(local=True)
    assert env["TF_IN_AUTOMATION"] == "1" and env["TF_INPUT"] == "0" and env["AWS_ACCESS_KEY_ID"] == "testing"
    monkeypatch.delenv("MLCTL_TF_PROVIDER_MIRROR")
    assert "plugin_cache_dir" in terraform.cli_config().read_text()
    monkeypatch.setenv("AWS_PROFILE", "prod-sso")
    assert terraform.terraform_env(local=False)["AWS_PROFILE"] == "prod-sso"


def test_bad_mirror_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLCTL_TF_PROVIDER_MIRROR", str(tmp_path))
    with pytest.raises(InfraError) as err:
        terraform.cli_config()
    assert "registry.terraform.io" in err.value.message and err.value.hint


def test_terraform_failure_carries_its_output_and_a_fix(tmp_path: Path) -> None:
    if terraform.shutil.which("terraform") is None:
        pytest.skip("terraform is not installed")
    (tmp_path / "main.tf.json").write_text('{"resource": {"nope_thing": {"x": {}}}}')
    with pytest.raises(InfraError) as err:
        terraform.Terraform(tmp_path, local=True).run("validate", "-no-color")
    assert "terraform validate failed" in err.value.message and err.value.hint


def test_helpers() -> None:
    import ipaddress

    assert [str(n) for n in split_cidr(ipaddress.IPv4Network("10.0.0.0/20"), 3)] == [
        "10.0.0.0/22", "10.0.4.0/22", "10.0.8.0/22"]
    assert log_retention(365) == 365 and log_retention(366) == 400 and log_retention(10_000) == 3653


def test_cli_bad_blueprint_exits_2_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ncloud: aws\nregion: eu-west-1\n")
    for cmd in ("synth", "plan", "apply", "drift", "bootstrap"):
        proc = run_mlctl("infra", cmd, "-b", str(bad))
        assert proc.returncode == 2, (cmd, proc.stderr)
        assert "Traceback" not in proc.stderr and "bad.yaml" in proc.stderr and "fix:" in proc.stderr
