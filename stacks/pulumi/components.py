"""Reusable Pulumi ComponentResources: the AWS environment of a blueprint, resource for resource
what ``modules/aws`` renders with CDKTF.

The security posture (key policies and settings, bucket policy, public access block, endpoints,
IMDSv2, control-plane logs, taints) is not restated here: it comes from ``modules/aws/posture.py``,
the module the CDKTF constructs read too. Each child resource is named after the CDKTF construct
path it mirrors (``<env>/registry/model-bucket/encryption``), which is what the parity test
(tests/pulumi/test_parity.py) matches on.
"""

from __future__ import annotations

import string
from typing import Any

import pulumi
import pulumi_aws as aws

from blueprints.schema import Cluster, KeyPurpose, Kms, Logging, Network, NodePool, Registries, SegmentName
from modules.aws.posture import (
    ACCESS_LOG_PREFIX,
    CLUSTER_POLICIES,
    CONTROL_PLANE_LOGS,
    INTERFACE_ENDPOINTS,
    KEY_DESCRIPTIONS,
    NODE_METADATA_OPTIONS,
    NODE_POLICIES,
    PUBLIC_ACCESS_BLOCK,
    TAINT_EFFECT,
    assume_role_policy,
    bucket_policy,
    key_policy,
    key_settings,
    log_delivery_policy,
    log_retention,
    policy_json,
    split_cidr,
)
from stacks.pulumi.component import Component

TYPE_PREFIX = "sovereign-mlops:aws"


def _tags(**extra: str) -> dict[str, str]:
    # The environment's tags travel as the provider's default_tags, as on the CDKTF side.
    return dict(extra)


class _Component(Component):
    type_prefix = TYPE_PREFIX

    def log_delivery_role(self, id: str, *, role_name: str, service: str, group: aws.cloudwatch.LogGroup) -> aws.iam.Role:
        """``<id>-role`` and its inline policy ``<id>-policy``, as ``modules.aws.common.log_delivery_role``."""
        role = aws.iam.Role(self.child(f"{id}-role"), name=role_name, assume_role_policy=assume_role_policy(service),
                            opts=self.opts())
        aws.iam.RolePolicy(self.child(f"{id}-policy"), role=role.id,
                           policy=group.arn.apply(lambda arn: log_delivery_policy(service, arn)), opts=self.opts())
        return role


class KeyRing(_Component):
    """One customer-managed key per purpose, alias ``alias/<env>-<purpose>``."""

    def __init__(self, name: str, *, spec: Kms, env_name: str, region: str, account: pulumi.Input[str],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("KeyRing", name, opts)
        self.keys: dict[KeyPurpose, aws.kms.Key] = {}
        admins = list(spec.admin_principals)

        def policy_of(purpose: KeyPurpose) -> pulumi.Output[str]:
            return pulumi.Output.from_input(account).apply(
                lambda acct: key_policy(purpose, account=acct, region=region, admins=admins))

        for purpose in spec.purposes:
            policy = policy_of(purpose)
            key = aws.kms.Key(
                self.child(f"{purpose}-key"), description=f"{env_name}: {KEY_DESCRIPTIONS[purpose]}",
                **key_settings(purpose), deletion_window_in_days=spec.deletion_window_days, policy=policy,
                tags=_tags(Name=f"{env_name}-{purpose}", Purpose=str(purpose)), opts=self.opts(),
            )
            aws.kms.Alias(self.child(f"{purpose}-key-alias"), name=f"alias/{env_name}-{purpose}",
                          target_key_id=key.key_id, opts=self.opts())
            self.keys[purpose] = key
        self.register_outputs({})

    def arn(self, purpose: KeyPurpose) -> pulumi.Output[str]:
        return self.keys[purpose].arn


class SegmentedNetwork(_Component):
    """VPC cut into the blueprint's segments; private subnets, declared flows only, private
    endpoints for AWS APIs, VPC flow logs into a KMS-encrypted group."""

    def __init__(self, name: str, *, spec: Network, env_name: str, region: str, logs_key: pulumi.Input[str],
                 retention_days: int, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("SegmentedNetwork", name, opts)
        azs = [f"{region}{string.ascii_lowercase[i]}" for i in range(spec.availability_zones)]
        self.vpc = aws.ec2.Vpc(self.child("vpc"), cidr_block=str(spec.vpc_cidr), enable_dns_support=True,
                               enable_dns_hostnames=True, tags=_tags(Name=env_name), opts=self.opts())
        aws.ec2.DefaultSecurityGroup(self.child("default-sg"), vpc_id=self.vpc.id, ingress=[], egress=[],
                                     tags=_tags(Name=f"{env_name}-default-deny-all"), opts=self.opts())
        self.subnets: dict[SegmentName, list[aws.ec2.Subnet]] = {}
        self.route_tables: dict[SegmentName, aws.ec2.RouteTable] = {}
        for seg in spec.segments:
            rt = aws.ec2.RouteTable(self.child(f"rt-{seg.name}"), vpc_id=self.vpc.id,
                                    tags=_tags(Name=f"{env_name}-{seg.name}"), opts=self.opts())
            self.route_tables[seg.name] = rt
            subnets = []
            for i, (az, block) in enumerate(zip(azs, split_cidr(seg.cidr, len(azs)), strict=True)):
                sn = aws.ec2.Subnet(
                    self.child(f"subnet-{seg.name}-{i}"), vpc_id=self.vpc.id, cidr_block=str(block),
                    availability_zone=az, map_public_ip_on_launch=False,
                    tags=_tags(Name=f"{env_name}-{seg.name}-{az}", Segment=str(seg.name)), opts=self.opts(),
                )
                aws.ec2.RouteTableAssociation(self.child(f"rta-{seg.name}-{i}"), subnet_id=sn.id,
                                              route_table_id=rt.id, opts=self.opts())
                subnets.append(sn)
            self.subnets[seg.name] = subnets
        self.security_groups = {
            seg.name: aws.ec2.SecurityGroup(
                self.child(f"sg-{seg.name}"), name=f"{env_name}-{seg.name}", vpc_id=self.vpc.id,
                description=f"{seg.name} segment: only the blueprint's declared flows",
                revoke_rules_on_delete=True, tags=_tags(Name=f"{env_name}-{seg.name}"), opts=self.opts(),
            )
            for seg in spec.segments
        }
        for f in spec.flows:
            for port in f.ports:
                ident = f"{f.source}-to-{f.to}-{f.protocol}-{port}"
                desc = f.description or f"{f.source} to {f.to}"
                for kind, group, peer in (("in", f.to, f.source), ("out", f.source, f.to)):
                    aws.ec2.SecurityGroupRule(
                        self.child(f"{kind}-{ident}"), type="ingress" if kind == "in" else "egress",
                        security_group_id=self.security_groups[group].id,
                        source_security_group_id=self.security_groups[peer].id, protocol=f.protocol,
                        from_port=port, to_port=port, description=desc, opts=self.opts(),
                    )
        if spec.has_egress:
            self._egress(env_name)
        self._endpoints(env_name, region)
        self._flow_logs(env_name, logs_key, log_retention(retention_days))
        self.register_outputs({"vpc_id": self.vpc.id})

    def _egress(self, env_name: str) -> None:
        igw = aws.ec2.InternetGateway(self.child("igw"), vpc_id=self.vpc.id,
                                      tags=_tags(Name=f"{env_name}-egress-only"), opts=self.opts())
        aws.ec2.Route(self.child("egress-default-route"), route_table_id=self.route_tables[SegmentName.egress].id,
                      destination_cidr_block="0.0.0.0/0", gateway_id=igw.id, opts=self.opts())
        for i, sn in enumerate(self.subnets[SegmentName.egress]):
            eip = aws.ec2.Eip(self.child(f"nat-eip-{i}"), domain="vpc", tags=_tags(Name=f"{env_name}-nat-{i}"),
                              opts=self.opts())
            aws.ec2.NatGateway(self.child(f"nat-{i}"), subnet_id=sn.id, allocation_id=eip.id,
                               tags=_tags(Name=f"{env_name}-nat-{i}"), opts=self.opts(depends_on=[igw]))

    def _endpoints(self, env_name: str, region: str) -> None:
        sg = self.security_groups[SegmentName.endpoints]
        for service in INTERFACE_ENDPOINTS:
            aws.ec2.VpcEndpoint(
                self.child(f"endpoint-{service.replace('.', '-')}"), vpc_id=self.vpc.id,
                service_name=f"com.amazonaws.{region}.{service}", vpc_endpoint_type="Interface",
                subnet_ids=[s.id for s in self.subnets[SegmentName.endpoints]], security_group_ids=[sg.id],
                private_dns_enabled=True, tags=_tags(Name=f"{env_name}-{service}"), opts=self.opts(),
            )
        private_tables = [rt.id for seg, rt in self.route_tables.items() if seg is not SegmentName.egress]
        aws.ec2.VpcEndpoint(self.child("endpoint-s3"), vpc_id=self.vpc.id, service_name=f"com.amazonaws.{region}.s3",
                            vpc_endpoint_type="Gateway", route_table_ids=private_tables,
                            tags=_tags(Name=f"{env_name}-s3"), opts=self.opts())

    def _flow_logs(self, env_name: str, key: pulumi.Input[str], retention: int) -> None:
        group = aws.cloudwatch.LogGroup(self.child("flow-logs"), name=f"/{env_name}/vpc/flow-logs",
                                        retention_in_days=retention, kms_key_id=key,
                                        tags=_tags(Name=f"{env_name}-flow-logs"), opts=self.opts())
        role = self.log_delivery_role("flow-logs", role_name=f"{env_name}-vpc-flow-logs",
                                      service="vpc-flow-logs.amazonaws.com", group=group)
        aws.ec2.FlowLog(self.child("flow-log"), vpc_id=self.vpc.id, traffic_type="ALL",
                        log_destination_type="cloud-watch-logs", log_destination=group.arn, iam_role_arn=role.arn,
                        max_aggregation_interval=60, tags=_tags(Name=f"{env_name}-flow-log"), opts=self.opts())

    def subnet_ids(self, segment: SegmentName) -> list[pulumi.Output[str]]:
        return [s.id for s in self.subnets[segment]]


class SecureBucket(_Component):
    """One S3 bucket with versioning, SSE-KMS + bucket key, the public access block, owner-enforced
    objects, TLS-only / KMS-only policy, noncurrent expiry and object lock (governance)."""

    def __init__(self, name: str, *, bucket: str, kms_key_arn: pulumi.Input[str], object_lock_days: int,
                 noncurrent_days: int, log_to: SecureBucket | None,
                 extra_policy: pulumi.Input[list[dict[str, Any]]] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("SecureBucket", name, opts)
        self.bucket = aws.s3.Bucket(self.child("bucket"), bucket=bucket, object_lock_enabled=True,
                                    force_destroy=False, tags=_tags(Name=bucket), opts=self.opts())
        b = self.bucket.id
        aws.s3.BucketPublicAccessBlock(self.child("public-access-block"), bucket=b, **PUBLIC_ACCESS_BLOCK,
                                       opts=self.opts())
        aws.s3.BucketOwnershipControls(self.child("ownership"), bucket=b,
                                       rule={"object_ownership": "BucketOwnerEnforced"}, opts=self.opts())
        versioning = aws.s3.BucketVersioning(self.child("versioning"), bucket=b,
                                             versioning_configuration={"status": "Enabled"}, opts=self.opts())
        self.encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            self.child("encryption"), bucket=b,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms",
                                                                "kms_master_key_id": kms_key_arn},
                    "bucket_key_enabled": True}],
            opts=self.opts(),
        )
        self.policy = aws.s3.BucketPolicy(self.child("policy"), bucket=b,
                                          policy=pulumi.Output.all(self.bucket.arn, extra_policy or []).apply(
                                              lambda a: bucket_policy(a[0], a[1])),
                                          opts=self.opts())
        aws.s3.BucketLifecycleConfiguration(
            self.child("lifecycle"), bucket=b,
            rules=[{"id": "expire-noncurrent-versions", "status": "Enabled", "filter": {"prefix": ""},
                    "noncurrent_version_expiration": {"noncurrent_days": noncurrent_days},
                    "abort_incomplete_multipart_upload": {"days_after_initiation": 7}}],
            opts=self.opts(depends_on=[versioning]),
        )
        self.object_lock = aws.s3.BucketObjectLockConfiguration(
            self.child("object-lock"), bucket=b,
            rule={"default_retention": {"mode": "GOVERNANCE", "days": object_lock_days}},
            opts=self.opts(depends_on=[versioning]),
        )
        if log_to:
            aws.s3.BucketLogging(self.child("access-logging"), bucket=b, target_bucket=log_to.bucket.id,
                                 target_prefix=ACCESS_LOG_PREFIX,
                                 opts=self.opts(depends_on=[log_to.policy, log_to.encryption, log_to.object_lock]))
        self.register_outputs({"bucket": self.bucket.id})


class ModelRegistry(_Component):
    def __init__(self, name: str, *, spec: Registries, artifacts_key: pulumi.Input[str],
                 logs_key: pulumi.Input[str], account: pulumi.Input[str],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ModelRegistry", name, opts)
        log_arn = f"arn:aws:s3:::{spec.log_bucket}"
        sinks = pulumi.Output.from_input(account).apply(lambda acct: [
            {"Sid": "S3ServerAccessLogs", "Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"},
             "Action": "s3:PutObject", "Resource": f"{log_arn}/{ACCESS_LOG_PREFIX}*",
             "Condition": {"StringEquals": {"aws:SourceAccount": acct}}},
            {"Sid": "CloudTrailAclCheck", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
             "Action": "s3:GetBucketAcl", "Resource": log_arn,
             "Condition": {"StringEquals": {"aws:SourceAccount": acct}}},
            {"Sid": "CloudTrailWrite", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
             "Action": "s3:PutObject", "Resource": f"{log_arn}/cloudtrail/AWSLogs/{acct}/*",
             "Condition": {"StringEquals": {"aws:SourceAccount": acct, "s3:x-amz-acl": "bucket-owner-full-control"}}},
        ])
        self.log_bucket = SecureBucket(self.child("log-bucket"), bucket=spec.log_bucket, kms_key_arn=logs_key,
                                       object_lock_days=spec.object_lock_days,
                                       noncurrent_days=spec.noncurrent_version_days, log_to=None,
                                       extra_policy=sinks, opts=self.opts())
        self.model_bucket = SecureBucket(self.child("model-bucket"), bucket=spec.model_bucket,
                                         kms_key_arn=artifacts_key, object_lock_days=spec.object_lock_days,
                                         noncurrent_days=spec.noncurrent_version_days, log_to=self.log_bucket,
                                         opts=self.opts())
        self.repositories = {
            repo: aws.ecr.Repository(
                self.child(f"ecr-{repo.replace('/', '-')}"), name=repo, image_tag_mutability="IMMUTABLE",
                image_scanning_configuration={"scan_on_push": True},
                encryption_configurations=[{"encryption_type": "KMS", "kms_key": artifacts_key}],
                tags=_tags(Name=repo), opts=self.opts(),
            )
            for repo in spec.container_repositories
        }
        self.register_outputs({})


class GpuCluster(_Component):
    """EKS with a private endpoint only, envelope-encrypted secrets, all control-plane logs, IRSA,
    a system pool and the GPU pools (nvidia.com/gpu taint, IMDSv2 hop limit 1, encrypted disks)."""

    def __init__(self, name: str, *, spec: Cluster, subnet_ids: list[pulumi.Output[str]],
                 security_group_ids: list[pulumi.Output[str]], cluster_key: pulumi.Input[str],
                 logs_key: pulumi.Input[str], retention_days: int, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("GpuCluster", name, opts)
        cname = spec.name
        log_group = aws.cloudwatch.LogGroup(self.child("control-plane-logs"), name=f"/aws/eks/{cname}/cluster",
                                            kms_key_id=logs_key, retention_in_days=log_retention(retention_days),
                                            opts=self.opts())
        cluster_role = self._role("cluster-role", f"{cname}-eks-cluster", "eks.amazonaws.com", CLUSTER_POLICIES)
        aws.iam.RolePolicy(self.child("cluster-role-kms"), role=cluster_role.id,
                           policy=pulumi.Output.from_input(cluster_key).apply(lambda k: policy_json([{
                               "Effect": "Allow",
                               "Action": ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey", "kms:CreateGrant"],
                               "Resource": k,
                           }])), opts=self.opts())
        self.cluster = aws.eks.Cluster(
            self.child("cluster"), name=cname, version=spec.kubernetes_version, role_arn=cluster_role.arn,
            vpc_config={"subnet_ids": subnet_ids, "security_group_ids": security_group_ids,
                        "endpoint_private_access": True, "endpoint_public_access": False},
            encryption_config={"resources": ["secrets"], "provider": {"key_arn": cluster_key}},
            enabled_cluster_log_types=CONTROL_PLANE_LOGS, tags=_tags(Name=cname),
            opts=self.opts(depends_on=[log_group]),
        )
        issuer = self.cluster.identities.apply(lambda ids: ids[0]["oidcs"][0]["issuer"] if ids else None)
        aws.iam.OpenIdConnectProvider(self.child("irsa"), url=issuer, client_id_lists=["sts.amazonaws.com"],
                                      tags=_tags(Name=f"{cname}-irsa"), opts=self.opts())
        node_role = self._role("node-role", f"{cname}-eks-nodes", "ec2.amazonaws.com", NODE_POLICIES)
        for pool, gpu in [(spec.system_pool, False), *[(p, True) for p in spec.gpu_pools]]:
            self._node_group(pool, gpu, node_role, subnet_ids, cluster_key)
        self.register_outputs({"cluster_name": self.cluster.name})

    def _role(self, id: str, role_name: str, service: str, managed: list[str]) -> aws.iam.Role:
        role = aws.iam.Role(self.child(id), name=role_name, assume_role_policy=assume_role_policy(service),
                            opts=self.opts())
        for policy in managed:
            aws.iam.RolePolicyAttachment(self.child(f"{id}-{policy}"), role=role.name,
                                         policy_arn=f"arn:aws:iam::aws:policy/{policy}", opts=self.opts())
        return role

    def _node_group(self, pool: NodePool, gpu: bool, node_role: aws.iam.Role, subnet_ids: list[pulumi.Output[str]],
                    key: pulumi.Input[str]) -> aws.eks.NodeGroup:
        lt = aws.ec2.LaunchTemplate(
            self.child(f"lt-{pool.name}"), name=self.cluster.name.apply(lambda n: f"{n}-{pool.name}"),
            metadata_options=dict(NODE_METADATA_OPTIONS),
            block_device_mappings=[{"device_name": "/dev/xvda", "ebs": {
                "volume_size": pool.disk_size_gb, "volume_type": "gp3", "encrypted": "true", "kms_key_id": key,
                "delete_on_termination": "true"}}],
            opts=self.opts(),
        )
        taints = pool.effective_taints if gpu else pool.taints
        labels = {**pool.labels, "mlops/pool": pool.name, **({"nvidia.com/gpu.present": "true"} if gpu else {})}
        return aws.eks.NodeGroup(
            self.child(f"ng-{pool.name}"), cluster_name=self.cluster.name, node_group_name=pool.name,
            node_role_arn=node_role.arn, subnet_ids=subnet_ids, instance_types=[pool.instance_type],
            ami_type="AL2023_x86_64_NVIDIA" if gpu else "AL2023_x86_64_STANDARD",
            scaling_config={"min_size": pool.min_size, "desired_size": pool.desired_size, "max_size": pool.max_size},
            launch_template={"id": lt.id, "version": lt.latest_version.apply(str)},
            labels=labels,
            taints=[{"key": t.key, "value": t.value, "effect": TAINT_EFFECT[t.effect]} for t in taints],
            tags=_tags(Name=pool.name), opts=self.opts(),
        )


class AuditTrail(_Component):
    """Multi-region CloudTrail with log-file validation, KMS-encrypted, into the log bucket and a
    KMS-encrypted CloudWatch Logs group."""

    def __init__(self, name: str, *, spec: Logging, env_name: str, key: pulumi.Input[str],
                 bucket: pulumi.Input[str], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("AuditTrail", name, opts)
        group = aws.cloudwatch.LogGroup(self.child("trail-logs"), name=f"/{env_name}/cloudtrail",
                                        retention_in_days=log_retention(spec.retention_days), kms_key_id=key,
                                        tags=_tags(Name=f"{env_name}-cloudtrail"), opts=self.opts())
        role = self.log_delivery_role("trail-logs", role_name=f"{env_name}-cloudtrail-logs",
                                      service="cloudtrail.amazonaws.com", group=group)
        aws.cloudtrail.Trail(
            self.child("trail"), name=f"{env_name}-audit", s3_bucket_name=bucket, s3_key_prefix="cloudtrail",
            kms_key_id=key, enable_log_file_validation=True, include_global_service_events=True,
            is_multi_region_trail=True, enable_logging=True,
            cloud_watch_logs_group_arn=group.arn.apply(lambda arn: f"{arn}:*"), cloud_watch_logs_role_arn=role.arn,
            tags=_tags(Name=f"{env_name}-audit"), opts=self.opts(),
        )
        self.register_outputs({})
