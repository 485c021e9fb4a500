"""The Pulumi program and the CDKTF synth of blueprints/uae-prod-aws.yaml render the same
resources with the same settings; a weakening injected on either side is caught and named."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from stacks.pulumi.inventory import AWS_TYPE_MAP, Registered, render_with_mocks
from stacks.pulumi.parity import PROVIDER, Inventory, cdktf_inventory, compare
from tests.pulumi.conftest import ENV, PROD_AWS
from tests.pulumi.parity_helpers import edit, named, transform
from tests.pulumi.parity_helpers import pulumi_inv as inventory_of


def test_program_renders_every_layer_with_components(pulumi_registered: list[Registered]) -> None:
    names = {r.name for r in pulumi_registered}
    for layer in ("kms", "network", "registry", "cluster", "audit"):
        assert any(n.startswith(f"{ENV}/{layer}/") for n in names), layer
    assert {r.token for r in pulumi_registered} == set(AWS_TYPE_MAP)  # every mapped type is used, none unmapped
    gpu = [r for r in pulumi_registered if r.token == "aws:eks/nodeGroup:NodeGroup" and "gpu" in r.name]
    assert gpu and all({"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"} in r.inputs["taints"]
                       for r in gpu)


def test_parity_with_the_cdktf_synth(cdktf_inv: Inventory, pulumi_registered: list[Registered]) -> None:
    pulumi_inv = inventory_of(pulumi_registered, ENV)
    assert len(cdktf_inv) == len(pulumi_inv) > 100
    assert compare(cdktf_inv, pulumi_inv) == []
    # The comparison really looks inside: the settings the posture is about are in both inventories.
    key = pulumi_inv[("aws_kms_key", "kms/artifacts-key")]
    assert key["enable_key_rotation"] is True and key["policy"]["Statement"]
    assert pulumi_inv[(PROVIDER, "aws")]["region"] == "me-central-1"
    lt = cdktf_inv[("aws_launch_template", "cluster/lt-gpu-inference")]
    assert lt["metadata_options"]["http_tokens"] == "required"
    assert lt["block_device_mappings"]["ebs"]["kms_key_id"] == "<ref:kms/cluster-key>"


# ---- weakenings: (Pulumi transform, CDKTF edit, resource, setting) ------------------------------





def _sse_aes(cfg: dict[str, Any]) -> None:
    rules = cfg.get("rules") or cfg.get("rule")
    rules[0]["apply_server_side_encryption_by_default"] = {"sse_algorithm": "AES256"}


def _cdktf_region(docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        doc["provider"]["aws"][0]["region"] = "eu-west-1"


WEAKENINGS = {
    "unencrypted bucket": (
        transform("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                   "model-bucket/encryption", _sse_aes),
        edit("aws_s3_bucket_server_side_encryption_configuration", "model-bucket/encryption", _sse_aes),
        "aws_s3_bucket_server_side_encryption_configuration registry/model-bucket/encryption",
        "rule.apply_server_side_encryption_by_default.sse_algorithm",
    ),
    "key without rotation": (
        transform("aws:kms/key:Key", "kms/artifacts-key", lambda p: p.update(enable_key_rotation=False)),
        edit("aws_kms_key", "kms/artifacts-key", lambda c: c.update(enable_key_rotation=False)),
        "aws_kms_key kms/artifacts-key", "enable_key_rotation",
    ),
    "public endpoint": (
        transform("aws:eks/cluster:Cluster", "cluster/cluster",
                   lambda p: p.update(vpc_config={**p["vpc_config"], "endpoint_public_access": True})),
        edit("aws_eks_cluster", "cluster/cluster", lambda c: c["vpc_config"].update(endpoint_public_access=True)),
        "aws_eks_cluster cluster/cluster", "vpc_config.endpoint_public_access",
    ),
    "region outside the UAE": (
        transform("pulumi:providers:aws", f"{ENV}/aws", lambda p: p.update(region="eu-west-1")),
        _cdktf_region,
        f"{PROVIDER} aws", "region",
    ),
}




@pytest.mark.parametrize("weakening", list(WEAKENINGS))
def test_a_weakened_pulumi_program_fails_parity(weakening: str, cdktf_inv: Inventory) -> None:
    transform, _, resource, setting = WEAKENINGS[weakening]
    diffs = compare(cdktf_inv, inventory_of(render_with_mocks(PROD_AWS, transform=transform), ENV))
    d = named(diffs, resource, setting)
    assert d.cdktf != d.pulumi
    assert len(diffs) <= 3, [str(x) for x in diffs]  # only what was changed, not noise


@pytest.mark.parametrize("weakening", list(WEAKENINGS))
def test_a_weakened_cdktf_synth_fails_parity(weakening: str, cdktf_docs: list[dict[str, Any]],
                                             pulumi_registered: list[Registered]) -> None:
    _, edit, resource, setting = WEAKENINGS[weakening]
    docs = copy.deepcopy(cdktf_docs)
    edit(docs)
    diffs = compare(cdktf_inventory(docs), inventory_of(pulumi_registered, ENV))
    named(diffs, resource, setting)
    assert len(diffs) <= 3, [str(x) for x in diffs]


def test_a_resource_missing_on_one_side_is_named(cdktf_docs: list[dict[str, Any]],
                                                 pulumi_registered: list[Registered]) -> None:
    docs = copy.deepcopy(cdktf_docs)
    registry = next(d for d in docs if "aws_s3_bucket_public_access_block" in d.get("resource", {}))
    victim = next(n for n, c in registry["resource"]["aws_s3_bucket_public_access_block"].items()
                  if c["//"]["metadata"]["path"].endswith("model-bucket/public-access-block"))
    del registry["resource"]["aws_s3_bucket_public_access_block"][victim]
    diffs = compare(cdktf_inventory(docs), inventory_of(pulumi_registered, ENV))
    assert [str(d) for d in diffs] == [
        "aws_s3_bucket_public_access_block registry/model-bucket/public-access-block: (resource): "
        "cdktf='missing' pulumi='present'"
    ]
    assert json.dumps(registry)  # still a valid document


def test_pulumi_project_and_stack_settings_name_a_valid_blueprint() -> None:
    import yaml

    from blueprints import load_blueprint
    from tests.pulumi.conftest import REPO

    project = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
    assert (REPO / project["main"] / "__main__.py").is_file()
    assert project["runtime"]["options"]["virtualenv"] == ".venv"
    assert project["config"]["pulumi:disable-default-providers"]["value"] == ["aws", "azure"]
    stack = yaml.safe_load((REPO / "Pulumi.uae-prod-aws.yaml").read_text())
    bp = load_blueprint(REPO / stack["config"][f"{project['name']}:blueprint"])
    assert [e.name for e in bp.environments] == [ENV]
