"""The whole lifecycle of blueprints/uae-local.yaml with real terraform against the AWS emulator
(moto server): bootstrap, apply, inspect with boto3, drift (clean, then after a manual change),
destroy, and check that nothing of ours is left."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import boto3
import pytest

from blueprints import load_environment
from control_plane.infra import lifecycle
from control_plane.infra.bootstrap import bootstrap
from control_plane.local.emulator import client_kwargs
from tests.infra.conftest import REPO, Synthesis

BLUEPRINT = REPO / "blueprints" / "uae-local.yaml"


def _mlctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "control_plane", *args], capture_output=True, text=True,
                          check=False, env=dict(os.environ), cwd=REPO)


def _check_deployed(c: dict[str, Any], env_name: str) -> None:
    s3, kms, ecr, eks, ec2 = c["s3"], c["kms"], c["ecr"], c["eks"], c["ec2"]
    for bucket in ("uae-local-model-artifacts", "uae-local-audit-logs"):
        rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
        assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
        assert rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"].startswith("arn:aws:kms:me-central-1:")
        assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
        policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
        tls = [st for st in policy["Statement"] if st["Effect"] == "Deny"
               and st.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"]
        assert tls and tls[0]["Action"] == "s3:*"
        pab = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert all(pab.values())
        lock = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
        assert lock["ObjectLockEnabled"] == "Enabled"
        if bucket == "uae-local-model-artifacts":  # the emulator's log bucket has no default rule (moto)
            assert lock["Rule"]["DefaultRetention"]["Mode"] == "GOVERNANCE"

    aliases = {a["AliasName"]: a["TargetKeyId"] for a in kms.list_aliases()["Aliases"]}
    for purpose in ("artifacts", "cluster", "logs"):
        key_id = aliases[f"alias/{env_name}-{purpose}"]
        assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True
    signing = kms.describe_key(KeyId=aliases[f"alias/{env_name}-signing"])["KeyMetadata"]
    assert signing["KeySpec"] == "ECC_NIST_P256" and signing["KeyUsage"] == "SIGN_VERIFY"

    repos = {r["repositoryName"]: r for r in ecr.describe_repositories()["repositories"]}
    for name in ("triton-serving", "tensorrt-build"):
        assert repos[name]["imageTagMutability"] == "IMMUTABLE"
        assert repos[name]["imageScanningConfiguration"]["scanOnPush"] is True
        assert repos[name]["encryptionConfiguration"]["encryptionType"] == "KMS"

    cluster = eks.describe_cluster(name="mlops-local")["cluster"]
    assert cluster["resourcesVpcConfig"]["endpointPublicAccess"] is False
    assert cluster["resourcesVpcConfig"]["endpointPrivateAccess"] is True
    enc = cluster["encryptionConfig"][0]
    cluster_key = kms.describe_key(KeyId=aliases[f"alias/{env_name}-cluster"])["KeyMetadata"]["Arn"]
    assert enc["resources"] == ["secrets"] and enc["provider"]["keyArn"] == cluster_key
    gpu = eks.describe_nodegroup(clusterName="mlops-local", nodegroupName="gpu-inference")["nodegroup"]
    assert {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"} in gpu["taints"]
    assert gpu["labels"]["workload"] == "inference"

    vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:Environment", "Values": [env_name]}])["Vpcs"]
    assert len(vpcs) == 1
    vpc_id = vpcs[0]["VpcId"]
    flow_logs = ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [vpc_id]}])["FlowLogs"]
    assert flow_logs and flow_logs[0]["TrafficType"] == "ALL"
    endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["VpcEndpoints"]
    services = {e["ServiceName"].rsplit(".", 1)[-1] if "ecr" not in e["ServiceName"]
                else e["ServiceName"].split("me-central-1.")[1] for e in endpoints}
    assert services == {"ecr.api", "ecr.dkr", "sts", "kms", "logs", "ec2", "eks", "s3"}
    for table in ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"]:
        assert all(r.get("DestinationCidrBlock") != "0.0.0.0/0" for r in table["Routes"])
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    assert len(subnets) == 8 and not any(s["MapPublicIpOnLaunch"] for s in subnets)


def _check_gone(c: dict[str, Any], env_name: str) -> None:
    buckets = {b["Name"] for b in c["s3"].list_buckets()["Buckets"]}
    assert not {"uae-local-model-artifacts", "uae-local-audit-logs"} & buckets
    assert "uae-local-tfstate" in buckets  # the state backend outlives the stacks, by design
    assert "mlops-local" not in c["eks"].list_clusters()["clusters"]
    repos = {r["repositoryName"] for r in c["ecr"].describe_repositories()["repositories"]}
    assert not {"triton-serving", "tensorrt-build"} & repos
    assert not c["ec2"].describe_vpcs(Filters=[{"Name": "tag:Environment", "Values": [env_name]}])["Vpcs"]
    aliases = {a["AliasName"] for a in c["kms"].list_aliases()["Aliases"]}
    assert not {a for a in aliases if a.startswith(f"alias/{env_name}-") and not a.endswith("-tfstate")}
    ours = [k for k in c["kms"].list_keys()["Keys"]
            if c["kms"].describe_key(KeyId=k["KeyId"])["KeyMetadata"]["Description"].startswith(f"{env_name}: ")
            and "Terraform state" not in c["kms"].describe_key(KeyId=k["KeyId"])["KeyMetadata"]["Description"]]
    # KMS never deletes at once: destroyed keys wait out their deletion window
    assert ours and all(c["kms"].describe_key(KeyId=k["KeyId"])["KeyMetadata"]["KeyState"] == "PendingDeletion"
                        for k in ours)
    groups = [g["logGroupName"] for g in c["logs"].describe_log_groups()["logGroups"]]
    assert not [g for g in groups if g.startswith(f"/{env_name}/") or g.startswith("/aws/eks/mlops-local")]
    assert not [t for t in c["cloudtrail"].describe_trails()["trailList"] if t["Name"] == f"{env_name}-audit"]
    roles = {r["RoleName"] for r in c["iam"].list_roles()["Roles"]}
    assert not {"mlops-local-eks-cluster", "mlops-local-eks-nodes", f"{env_name}-vpc-flow-logs"} & roles


@pytest.mark.slow
def test_apply_inspect_drift_destroy(aws_emulator: str, local_synth: Synthesis, terraform_ready: None) -> None:
    env = load_environment(BLUEPRINT)
    clients = {svc: boto3.client(svc, **client_kwargs(env))
               for svc in ("s3", "kms", "ecr", "eks", "ec2", "logs", "cloudtrail", "iam")}
    bootstrap(env)
    assert bootstrap(env).created_bucket is False  # idempotent
    ws = lifecycle.workspace(BLUEPRINT, outdir=local_synth.outdir, synthesize=False)
    # Before anything exists: the first stack plans, the next one waits for its inputs.
    first_two = lifecycle.Workspace(stacks=ws.stacks[:2], environments=ws.environments)
    planned = lifecycle.plan(first_two)
    assert planned[0].action == "planned" and planned[0].changes and "to create" in planned[0].detail
    assert planned[1].action == "blocked" and "uae-local-security" in planned[1].detail
    try:
        applied = lifecycle.apply(ws)
        assert [r.stack for r in applied] == [s.name for s in local_synth.stacks]
        _check_deployed(clients, env.name)

        clean = _mlctl("infra", "drift", "--no-synth", "--outdir", str(local_synth.outdir), "-o", "json")
        assert clean.returncode == 0, clean.stderr[-3000:]
        assert json.loads(clean.stdout) == {"changes": [], "drift": False}

        # A manual, security-relevant change made behind terraform's back.
        clients["ecr"].put_image_tag_mutability(repositoryName="triton-serving", imageTagMutability="MUTABLE")
        drifted = _mlctl("infra", "drift", "--no-synth", "--outdir", str(local_synth.outdir), "-o", "json")
        assert drifted.returncode == 5, drifted.stderr[-3000:]
        assert "Traceback" not in drifted.stderr and "drifted" in drifted.stderr and "fix:" in drifted.stderr
        changes = json.loads(drifted.stdout)["changes"]
        repo = [c for c in changes if c["address"].startswith("aws_ecr_repository.registry_ecr-triton-serving")]
        assert repo and "image_tag_mutability" in repo[0]["attributes"]
        assert repo[0]["stack"] == "uae-local-registry"
        assert {c["stack"] for c in changes} == {"uae-local-registry"}
    finally:
        lifecycle.destroy(ws)
    _check_gone(clients, env.name)
