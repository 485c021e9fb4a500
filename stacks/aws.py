"""The AWS stacks of one environment, one per layer, in apply order:
security (KMS) -> network -> registry -> cluster -> audit.

Later layers read earlier ones through cdktf cross-stack references (outputs + remote state in
the same S3 backend). Each stack's name is prefixed with the environment name, so a multi-cloud
blueprint can hold several environments in one app.
"""

from __future__ import annotations

from typing import Any

from blueprints.conventions import DUMMY_CREDENTIALS, state_key_alias
from blueprints.conventions import emulator_endpoint as endpoint_for
from blueprints.schema import Environment, KeyPurpose, SegmentName
from modules.aws.audit import AuditTrail
from modules.aws.cluster import GpuCluster
from modules.aws.common import LogSink
from modules.aws.kms import KeyRing
from modules.aws.network import SegmentedNetwork
from modules.aws.registry import ModelRegistry
from modules.cdk import App, Construct, S3Backend, TerraformStack, aws
from stacks.built import BuiltStack

# Every service the stacks call, pointed at the emulator for a local environment.
EMULATED_SERVICES = ("cloudtrail", "cloudwatchlogs", "ec2", "ecr", "eks", "iam", "kms", "s3", "sts")
LAYERS = ("security", "network", "registry", "cluster", "audit")


class EnvironmentStack(TerraformStack):
    """A stack with the environment's provider (region, default tags, emulator wiring) and backend."""

    def __init__(self, scope: Construct, layer: str, env: Environment) -> None:
        super().__init__(scope, f"{env.name}-{layer}")
        self.env = env
        self.layer = layer
        local: dict[str, Any] = {}
        if env.is_local:
            # moto plays AWS: point every service at it, skip the checks that need real AWS, and
            # use its dummy keys (never real credentials against an emulator).
            ep = endpoint_for(env)
            local = {
                "endpoints": [dict.fromkeys(EMULATED_SERVICES, ep)],
                "skip_credentials_validation": True,
                "skip_requesting_account_id": True,
                "skip_metadata_api_check": "true",
                "s3_use_path_style": True,
                "access_key": DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                "secret_key": DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            }
        aws("provider").AwsProvider(
            self, "aws", region=env.region, default_tags=[{"tags": env.tag_map()}],
            allowed_account_ids=[env.account_id] if env.account_id and not env.is_local else None,
            **local,
        )
        backend: dict[str, Any] = {}
        if env.is_local:
            ep = endpoint_for(env)
            backend = {
                "endpoints": {"s3": ep, "sts": ep, "iam": ep},
                "use_path_style": True,
                "skip_credentials_validation": True,
                "skip_requesting_account_id": True,
                "skip_metadata_api_check": True,
                "skip_region_validation": True,
                "access_key": DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                "secret_key": DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            }
        S3Backend(
            self,
            bucket=env.state.bucket,
            key=f"{env.state.key_prefix}/{env.name}/{layer}.tfstate",
            region=env.region,
            encrypt=True,
            kms_key_id=state_key_alias(env),
            **backend,
        )
        # S3-native state locking (terraform >= 1.10); cdktf 0.21 has no typed field for it.
        self.add_override("terraform.backend.s3.use_lockfile", True)


def build_aws_environment(app: App, env: Environment) -> list[BuiltStack]:

    tags = None  # provider default_tags carry the environment's tags to every resource
    stacks: dict[str, EnvironmentStack] = {layer: EnvironmentStack(app, layer, env) for layer in LAYERS}

    keys = KeyRing(stacks["security"], "kms", spec=env.kms, tags=tags, name=env.name, region=env.region)
    logs_key = keys.arn(KeyPurpose.logs)
    sink = LogSink(retention_days=env.logging.retention_days, kms_key_arn=logs_key)

    net = SegmentedNetwork(stacks["network"], "network", spec=env.network, kms_key=logs_key, logging=sink,
                           tags=tags, name=env.name, region=env.region)
    registry = ModelRegistry(stacks["registry"], "registry", spec=env.registries,
                             kms_key=keys.arn(KeyPurpose.artifacts), logging=sink, tags=tags,
                             name=env.name, region=env.region, ephemeral=env.is_local)
    GpuCluster(stacks["cluster"], "cluster", spec=env.cluster, subnet_ids=net.subnet_ids(SegmentName.serving),
               security_group_ids=[net.security_groups[SegmentName.serving].id],
               kms_key=keys.arn(KeyPurpose.cluster), logging=sink, tags=tags, region=env.region,
               emulator=env.is_local)
    AuditTrail(stacks["audit"], "audit", spec=env.logging, kms_key=logs_key,
               logging=LogSink(retention_days=env.logging.retention_days, kms_key_arn=logs_key,
                               bucket=registry.log_bucket.name),
               tags=tags, name=env.name, region=env.region)
    # Registry -> audit needs the bucket policy first (CloudTrail checks it on create).
    stacks["audit"].add_dependency(stacks["registry"])
    return [
        BuiltStack(stack=s, name=f"{env.name}-{layer}", environment=env.name, cloud=str(env.cloud), layer=layer,
                   order=i)
        for i, (layer, s) in enumerate(stacks.items())
    ]
