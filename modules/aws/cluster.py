"""Cluster: EKS reachable only from inside the VPC, with the blueprint's GPU node pools.

- API endpoint private only; Kubernetes secrets envelope-encrypted with the cluster key;
- all five control-plane log types, into a pre-created KMS-encrypted log group with retention
  (left to EKS, that group would be unencrypted and kept forever);
- an IAM OIDC provider for IRSA (its thumbprint is computed by the AWS provider: IAM no longer
  checks thumbprints for well-known issuers, and we have no tls provider offline);
- a system node group and one node group per GPU pool, carrying the ``nvidia.com/gpu`` taint and
  the pool's labels; every node uses a launch template that requires IMDSv2 with hop limit 1 (pods
  cannot reach node credentials) and encrypts its root volume with the cluster key.
"""

from __future__ import annotations

from typing import Any

from blueprints.schema import Cluster, KeyPurpose, NodePool
from modules.aws.common import (
    DEFAULT_REGION,
    LogSink,
    assume_role_policy,
    log_retention,
    merged_tags,
    policy_json,
)
from modules.aws.kms import own_key
from modules.aws.posture import (
    CLUSTER_POLICIES,
    CONTROL_PLANE_LOGS,
    NODE_METADATA_OPTIONS,
    NODE_POLICIES,
    TAINT_EFFECT,
)
from modules.cdk import Construct, Token, aws


class GpuCluster(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        spec: Cluster,
        subnet_ids: list[str],
        security_group_ids: list[str] | None = None,
        kms_key: str | None = None,
        tags: dict[str, str] | None = None,
        logging: LogSink | None = None,
        region: str = DEFAULT_REGION,
        emulator: bool = False,
    ) -> None:
        super().__init__(scope, id)
        logging = logging or LogSink()
        name = spec.name
        self.emulator = emulator
        cluster_key = kms_key or own_key(self, "cluster-key", KeyPurpose.cluster, name=name, region=region,
                                         tags=tags)
        logs_key = logging.kms_key_arn or own_key(self, "logs-key", KeyPurpose.logs, name=name, region=region,
                                                  tags=tags)

        log_group = aws("cloudwatch_log_group").CloudwatchLogGroup(
            self, "control-plane-logs", name=f"/aws/eks/{name}/cluster", kms_key_id=logs_key,
            retention_in_days=log_retention(logging.retention_days), tags=tags,
        )
        cluster_role = self._role("cluster-role", f"{name}-eks-cluster", "eks.amazonaws.com", CLUSTER_POLICIES, tags)
        aws("iam_role_policy").IamRolePolicy(
            self, "cluster-role-kms", role=cluster_role.id,
            policy=policy_json([{
                "Effect": "Allow",
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey", "kms:CreateGrant"],
                "Resource": cluster_key,
            }]),
        )
        self.cluster = aws("eks_cluster").EksCluster(
            self, "cluster", name=name, version=spec.kubernetes_version, role_arn=cluster_role.arn,
            vpc_config={
                "subnet_ids": subnet_ids,
                "security_group_ids": security_group_ids or [],
                "endpoint_private_access": True,
                "endpoint_public_access": False,
            },
            encryption_config={"resources": ["secrets"], "provider": {"key_arn": cluster_key}},
            enabled_cluster_log_types=CONTROL_PLANE_LOGS,
            tags=merged_tags(tags, Name=name),
            depends_on=[log_group],
        )
        aws("iam_openid_connect_provider").IamOpenidConnectProvider(
            self, "irsa", url=self.cluster.identity.get(0).oidc.get(0).issuer, client_id_list=["sts.amazonaws.com"],
            tags=merged_tags(tags, Name=f"{name}-irsa"),
        )
        node_role = self._role("node-role", f"{name}-eks-nodes", "ec2.amazonaws.com", NODE_POLICIES, tags)
        self.node_groups: dict[str, Any] = {}
        for pool, gpu in [(spec.system_pool, False), *[(p, True) for p in spec.gpu_pools]]:
            self.node_groups[pool.name] = self._node_group(pool, gpu, node_role, subnet_ids, cluster_key, tags)

    def _role(self, id: str, role_name: str, service: str, managed: list[str], tags: dict[str, str] | None) -> Any:
        role = aws("iam_role").IamRole(
            self, id, name=role_name, assume_role_policy=assume_role_policy(service), tags=tags
        )
        for policy in managed:
            aws("iam_role_policy_attachment").IamRolePolicyAttachment(
                self, f"{id}-{policy}", role=role.name, policy_arn=f"arn:aws:iam::aws:policy/{policy}"
            )
        return role

    def _node_group(self, pool: NodePool, gpu: bool, node_role: Any, subnet_ids: list[str], key: str,
                    tags: dict[str, str] | None) -> Any:
        lt_mod = aws("launch_template")
        lt = lt_mod.LaunchTemplate(
            self, f"lt-{pool.name}", name=f"{self.cluster.name}-{pool.name}",
            metadata_options=dict(NODE_METADATA_OPTIONS),
            # Struct classes, not dicts: jsii drops dicts in lists that hold cross-stack tokens.
            block_device_mappings=[lt_mod.LaunchTemplateBlockDeviceMappings(
                device_name="/dev/xvda",
                ebs=lt_mod.LaunchTemplateBlockDeviceMappingsEbs(
                    volume_size=pool.disk_size_gb, volume_type="gp3", encrypted="true", kms_key_id=key,
                    delete_on_termination="true",
                ),
            )],
            # No tag_specifications: moto cannot parse them in launch-template data (KeyError
            # 'ResourceType'); managed node groups tag their instances with the node group's tags.
            tags=tags,
            # moto echoes the template's own tags back as a tag_specifications block; on the
            # emulator only, that phantom difference is ignored (real AWS does not do this).
            lifecycle={"ignore_changes": ["tag_specifications"]} if self.emulator else None,
        )
        taints = pool.effective_taints if gpu else pool.taints
        labels = {**pool.labels, "mlops/pool": pool.name, **({"nvidia.com/gpu.present": "true"} if gpu else {})}
        return aws("eks_node_group").EksNodeGroup(
            self, f"ng-{pool.name}", cluster_name=self.cluster.name, node_group_name=pool.name,
            node_role_arn=node_role.arn, subnet_ids=subnet_ids, instance_types=[pool.instance_type],
            ami_type="AL2023_x86_64_NVIDIA" if gpu else "AL2023_x86_64_STANDARD",
            scaling_config={"min_size": pool.min_size, "desired_size": pool.desired_size,
                            "max_size": pool.max_size},
            launch_template={"id": lt.id, "version": Token.as_string(lt.latest_version)},
            labels=labels,
            taint=[{"key": t.key, "value": t.value, "effect": TAINT_EFFECT[t.effect]} for t in taints],
            tags=merged_tags(tags, Name=pool.name),
            # moto invents an SSH remote_access block (key "eksKeypair") on every node group; on the
            # emulator only it is ignored, so drift stays meaningful. Production never ignores it.
            lifecycle={"ignore_changes": ["remote_access"]} if self.emulator else None,
        )
