"""boto3 checks of a deployed uae-local environment on the emulator, shared by every test that
deploys it (mlctl infra apply, the real cdktf CLI): the security properties the blueprint promises,
and after destroy, that nothing of ours is left."""

from __future__ import annotations

import json
from typing import Any


def check_deployed(c: dict[str, Any], env_name: str) -> None:
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


def check_gone(c: dict[str, Any], env_name: str) -> None:
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
