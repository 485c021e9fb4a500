"""What the synthesized Terraform says, for both blueprints: the security properties are in the JSON
that terraform will apply (not just in our Python)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from modules.aws.network import INTERFACE_ENDPOINTS
from tests.synthesis import REPO, Synthesis

LAYERS = ["security", "network", "registry", "cluster", "audit"]


def resources(stack: dict[str, Any], rtype: str) -> list[dict[str, Any]]:
    return list(stack.get("resource", {}).get(rtype, {}).values())


@pytest.fixture(params=["local", "prod"])
def synthesis(request: pytest.FixtureRequest) -> Synthesis:
    return request.getfixturevalue(f"{request.param}_synth")


def test_stacks_are_prefixed_ordered_and_wired(local_synth: Synthesis, prod_synth: Synthesis) -> None:
    for syn, env in ((local_synth, "uae-local"), (prod_synth, "uae-prod-aws")):
        assert [s.layer for s in syn.stacks] == LAYERS
        assert [s.name for s in syn.stacks] == [f"{env}-{layer}" for layer in LAYERS]
        assert all(s.environment == env and s.cloud == "aws" and s.path.is_file() for s in syn.stacks)
        deps = {s.layer: set(s.dependencies) for s in syn.stacks}
        assert deps["cluster"] == {f"{env}-security", f"{env}-network"}
        assert f"{env}-registry" in deps["audit"]
        # every dependency comes earlier in apply order
        order = [s.name for s in syn.stacks]
        for s in syn.stacks:
            assert all(order.index(d) < order.index(s.name) for d in s.dependencies)


def test_provider_region_and_emulator_wiring(local_synth: Synthesis, prod_synth: Synthesis, moto_endpoint: str) -> None:
    for layer in LAYERS:
        local = local_synth.stack(layer)["provider"]["aws"][0]
        assert local["region"] == "me-central-1"
        assert set(local["endpoints"][0].values()) == {moto_endpoint}
        assert {"s3", "ec2", "eks", "kms", "iam", "sts", "ecr", "cloudtrail"} <= set(local["endpoints"][0])
        assert local["skip_credentials_validation"] and local["s3_use_path_style"]
        assert local["default_tags"][0]["tags"]["Environment"] == "uae-local"
        prod = prod_synth.stack(layer)["provider"]["aws"][0]
        assert prod["region"] == "me-central-1"
        # production: no emulator endpoints, no skipped checks, no keys in the code
        assert not {"endpoints", "access_key", "secret_key", "skip_credentials_validation"} & set(prod)
        assert prod["default_tags"][0]["tags"]["DataClassification"] == "confidential"


def test_state_backend_is_encrypted_s3_with_native_locking(synthesis: Synthesis) -> None:
    for s in synthesis.stacks:
        backend = json.loads(s.path.read_text())["terraform"]["backend"]["s3"]
        assert backend["region"] == "me-central-1"
        assert backend["encrypt"] is True and backend["use_lockfile"] is True
        assert backend["kms_key_id"] == f"alias/{s.environment}-tfstate"
        assert backend["key"].endswith(f"/{s.environment}/{s.layer}.tfstate")


def test_keys_one_per_purpose_rotating_and_signing_p256(synthesis: Synthesis) -> None:
    keys = resources(synthesis.stack("security"), "aws_kms_key")
    assert len(keys) == 4
    signing = [k for k in keys if k["key_usage"] == "SIGN_VERIFY"]
    assert len(signing) == 1 and signing[0]["customer_master_key_spec"] == "ECC_NIST_P256"
    for k in keys:
        if k is not signing[0]:
            assert k["enable_key_rotation"] is True and k["customer_master_key_spec"] == "SYMMETRIC_DEFAULT"
        policy = k["policy"]
        assert '"kms:*"' not in policy  # administration and use are separate, least privilege
    aliases = {a["name"] for a in resources(synthesis.stack("security"), "aws_kms_alias")}
    env = synthesis.stacks[0].environment
    assert aliases == {f"alias/{env}-{p}" for p in ("artifacts", "cluster", "logs", "signing")}


def test_network_is_private_by_construction(local_synth: Synthesis, prod_synth: Synthesis) -> None:
    local = local_synth.stack("network")
    assert not resources(local, "aws_internet_gateway") and not resources(local, "aws_route")
    assert not resources(local, "aws_nat_gateway")
    prod = prod_synth.stack("network")
    routes = resources(prod, "aws_route")
    assert len(routes) == 1 and "rt-egress" in routes[0]["route_table_id"]
    for syn, azs in ((local_synth, 2), (prod_synth, 3)):
        net = syn.stack("network")
        subnets = resources(net, "aws_subnet")
        assert all(s["map_public_ip_on_launch"] is False for s in subnets)
        assert len({s["availability_zone"] for s in subnets}) == azs
        default_sg = resources(net, "aws_default_security_group")
        assert len(default_sg) == 1 and default_sg[0]["ingress"] == [] and default_sg[0]["egress"] == []
        for rule in resources(net, "aws_security_group_rule"):
            assert "cidr_blocks" not in rule and "ipv6_cidr_blocks" not in rule
            assert rule["source_security_group_id"]
        endpoints = resources(net, "aws_vpc_endpoint")
        names = {e["service_name"].removeprefix("com.amazonaws.me-central-1.") for e in endpoints}
        assert names == {*INTERFACE_ENDPOINTS, "s3"}
        assert all(e["private_dns_enabled"] for e in endpoints if e["vpc_endpoint_type"] == "Interface")
        log_group = resources(net, "aws_cloudwatch_log_group")[0]
        assert log_group["retention_in_days"] >= 365 and log_group["kms_key_id"]
        assert resources(net, "aws_flow_log")[0]["traffic_type"] == "ALL"
    # the blueprint's 400 days is a valid CloudWatch retention and is kept as is
    assert resources(prod_synth.stack("network"), "aws_cloudwatch_log_group")[0]["retention_in_days"] == 400


def test_buckets_and_repositories_are_locked_down(synthesis: Synthesis) -> None:
    reg = synthesis.stack("registry")
    buckets = resources(reg, "aws_s3_bucket")
    assert len(buckets) == 2 and all(b["object_lock_enabled"] for b in buckets)
    for rtype in ("aws_s3_bucket_versioning", "aws_s3_bucket_public_access_block", "aws_s3_bucket_policy",
                  "aws_s3_bucket_lifecycle_configuration",
                  "aws_s3_bucket_server_side_encryption_configuration", "aws_s3_bucket_ownership_controls"):
        assert len(resources(reg, rtype)) == 2, rtype
    local = synthesis.stacks[0].environment == "uae-local"
    locks = resources(reg, "aws_s3_bucket_object_lock_configuration")
    # the emulator's log bucket has no default retention rule (see docs/infrastructure.md, moto)
    assert len(locks) == (1 if local else 2)
    assert all(lk["rule"]["default_retention"]["mode"] == "GOVERNANCE" for lk in locks)
    for sse in resources(reg, "aws_s3_bucket_server_side_encryption_configuration"):
        rule = sse["rule"][0]
        assert rule["apply_server_side_encryption_by_default"]["sse_algorithm"] == "aws:kms"
        assert rule["apply_server_side_encryption_by_default"]["kms_master_key_id"]
        assert rule["bucket_key_enabled"] is True
    for lc in resources(reg, "aws_s3_bucket_lifecycle_configuration"):
        assert lc["rule"][0]["noncurrent_version_expiration"][0]["noncurrent_days"] >= 1
    for pab in resources(reg, "aws_s3_bucket_public_access_block"):
        assert all(pab[k] for k in ("block_public_acls", "block_public_policy", "ignore_public_acls",
                                    "restrict_public_buckets"))
    for pol in resources(reg, "aws_s3_bucket_policy"):
        assert "aws:SecureTransport" in pol["policy"] and "s3:x-amz-server-side-encryption" in pol["policy"]
    assert len(resources(reg, "aws_s3_bucket_logging")) == 1
    for repo in resources(reg, "aws_ecr_repository"):
        assert repo["image_tag_mutability"] == "IMMUTABLE"
        assert repo["image_scanning_configuration"]["scan_on_push"] is True
        assert repo["encryption_configuration"][0]["encryption_type"] == "KMS"
        assert repo["encryption_configuration"][0]["kms_key"]
    assert all(b["force_destroy"] is local for b in buckets)  # only the emulator's buckets are disposable


def test_cluster_private_encrypted_with_tainted_gpu_pools(synthesis: Synthesis) -> None:
    cl = synthesis.stack("cluster")
    eks = resources(cl, "aws_eks_cluster")[0]
    assert eks["vpc_config"]["endpoint_private_access"] is True
    assert eks["vpc_config"]["endpoint_public_access"] is False
    assert eks["encryption_config"]["resources"] == ["secrets"] and eks["encryption_config"]["provider"]["key_arn"]
    assert set(eks["enabled_cluster_log_types"]) == {"api", "audit", "authenticator", "controllerManager",
                                                      "scheduler"}
    assert len(resources(cl, "aws_iam_openid_connect_provider")) == 1
    groups = {g["node_group_name"]: g for g in resources(cl, "aws_eks_node_group")}
    env = synthesis.stacks[0].environment
    blueprint = yaml.safe_load((REPO / "blueprints" / f"{env}.yaml").read_text())
    gpu_pools = [p["name"] for p in blueprint["cluster"]["gpu_pools"]]
    assert set(groups) == {"system", *gpu_pools}
    for name in gpu_pools:
        assert {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"} in groups[name]["taint"]
        assert groups[name]["labels"]["nvidia.com/gpu.product"] == "A10G"
    assert groups["system"]["taint"] == []
    for lt in resources(cl, "aws_launch_template"):
        assert lt["metadata_options"]["http_tokens"] == "required"
        assert lt["metadata_options"]["http_put_response_hop_limit"] == 1
        ebs = lt["block_device_mappings"][0]["ebs"]
        assert ebs["encrypted"] == "true" and ebs["kms_key_id"]
    log_group = resources(cl, "aws_cloudwatch_log_group")[0]
    assert log_group["name"] == f"/aws/eks/{eks['name']}/cluster" and log_group["kms_key_id"]


def test_audit_trail_validates_and_encrypts(synthesis: Synthesis) -> None:
    trail = resources(synthesis.stack("audit"), "aws_cloudtrail")[0]
    assert trail["enable_log_file_validation"] is True and trail["kms_key_id"]
    # records every region's API calls (use outside the UAE shows up), delivers only in-region
    assert trail["is_multi_region_trail"] is True
    log_group = resources(synthesis.stack("audit"), "aws_cloudwatch_log_group")[0]
    assert log_group["kms_key_id"] and log_group["retention_in_days"] >= 365
    assert trail["cloud_watch_logs_group_arn"].endswith(":*") and trail["cloud_watch_logs_role_arn"]
