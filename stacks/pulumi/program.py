"""Render a blueprint's AWS environments as Pulumi resources, layer for layer as stacks/aws.py
does with CDKTF: security (KMS) -> network -> registry -> cluster -> audit. Azure environments are
rendered by stacks/pulumi/azure_program.py."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from blueprints.schema import Blueprint, Cloud, Environment, KeyPurpose, SegmentName
from control_plane.errors import BlueprintError
from stacks.pulumi.components import AuditTrail, GpuCluster, KeyRing, ModelRegistry, SegmentedNetwork


def render_environment(env: Environment) -> pulumi.ProviderResource:
    """Every resource of one environment, under an explicit provider pinned to its region."""
    if env.cloud is Cloud.azure:
        # pulumi_azure is imported only for blueprints that have an Azure environment.
        from stacks.pulumi.azure_program import render_azure_environment

        return render_azure_environment(env)
    if env.cloud is not Cloud.aws:
        raise BlueprintError(
            f"environment '{env.name}': the Pulumi backend renders AWS and Azure environments only",
            hint="render it with CDKTF (`mlctl infra synth`); see docs/pulumi.md",
        )
    if env.is_local:
        raise BlueprintError(
            f"environment '{env.name}' targets the local emulator, which the Pulumi backend does not wire",
            hint="use `npx cdktf deploy` or `mlctl infra apply` for the emulator; Pulumi is for real accounts",
        )
    provider = aws.Provider(
        f"{env.name}/aws", region=env.region, default_tags={"tags": env.tag_map()},
        allowed_account_ids=[env.account_id] if env.account_id else None,
    )
    opts = pulumi.ResourceOptions(provider=provider)
    account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(provider=provider)).account_id
    keys = KeyRing(f"{env.name}/kms", spec=env.kms, env_name=env.name, region=env.region, account=account, opts=opts)
    logs_key = keys.arn(KeyPurpose.logs)
    net = SegmentedNetwork(f"{env.name}/network", spec=env.network, env_name=env.name, region=env.region,
                           logs_key=logs_key, retention_days=env.logging.retention_days, opts=opts)
    registry = ModelRegistry(f"{env.name}/registry", spec=env.registries, artifacts_key=keys.arn(KeyPurpose.artifacts),
                             logs_key=logs_key, account=account, opts=opts)
    GpuCluster(f"{env.name}/cluster", spec=env.cluster, subnet_ids=net.subnet_ids(SegmentName.serving),
               security_group_ids=[net.security_groups[SegmentName.serving].id],
               cluster_key=keys.arn(KeyPurpose.cluster), logs_key=logs_key,
               retention_days=env.logging.retention_days, opts=opts)
    AuditTrail(f"{env.name}/audit", spec=env.logging, env_name=env.name, key=logs_key,
               bucket=registry.log_bucket.bucket.id,
               # CloudTrail checks the log bucket's policy on create (as the CDKTF stack dependency).
               opts=pulumi.ResourceOptions(provider=provider, depends_on=[registry]))
    return provider


def render_blueprint(bp: Blueprint) -> None:
    for env in bp.environments:
        render_environment(env)
