"""Run the Pulumi program under ``pulumi.runtime.set_mocks`` (Pulumi's documented unit-test mode: no
engine, no plugins, no cloud) and turn what it registered into Terraform-JSON-shaped documents.

Why Terraform-shaped: pulumi-aws is bridged from the Terraform AWS provider, so each Pulumi type is
one Terraform resource type with the same attributes in camelCase. One shape lets the same Rego
guardrails (``policies/infra/``) and the parity test read both renderers' output.

The mocks answer every resource with references in Terraform's syntax
(``${aws_kms_key.<name>.arn}``) instead of invented ids, so a reference from one resource to another
survives into the document exactly as it appears in the CDKTF synth.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

from blueprints import load_blueprint
from blueprints.schema import Blueprint

# Stands in for the account id: the same text the CDKTF synth carries (its caller-identity data
# source), so account-scoped policies compare equal.
MOCK_ACCOUNT = "${data.aws_caller_identity.caller.account_id}"

# Pulumi type token -> Terraform resource type, for every type the program renders.
AWS_TYPE_MAP = {
    "pulumi:providers:aws": "provider.aws",
    "aws:kms/key:Key": "aws_kms_key",
    "aws:kms/alias:Alias": "aws_kms_alias",
    "aws:ec2/vpc:Vpc": "aws_vpc",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "aws_default_security_group",
    "aws:ec2/routeTable:RouteTable": "aws_route_table",
    "aws:ec2/subnet:Subnet": "aws_subnet",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "aws_route_table_association",
    "aws:ec2/securityGroup:SecurityGroup": "aws_security_group",
    "aws:ec2/securityGroupRule:SecurityGroupRule": "aws_security_group_rule",
    "aws:ec2/internetGateway:InternetGateway": "aws_internet_gateway",
    "aws:ec2/route:Route": "aws_route",
    "aws:ec2/eip:Eip": "aws_eip",
    "aws:ec2/natGateway:NatGateway": "aws_nat_gateway",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "aws_vpc_endpoint",
    "aws:ec2/flowLog:FlowLog": "aws_flow_log",
    "aws:ec2/launchTemplate:LaunchTemplate": "aws_launch_template",
    "aws:cloudwatch/logGroup:LogGroup": "aws_cloudwatch_log_group",
    "aws:iam/role:Role": "aws_iam_role",
    "aws:iam/rolePolicy:RolePolicy": "aws_iam_role_policy",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": "aws_iam_role_policy_attachment",
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": "aws_iam_openid_connect_provider",
    "aws:s3/bucket:Bucket": "aws_s3_bucket",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": "aws_s3_bucket_public_access_block",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": "aws_s3_bucket_ownership_controls",
    "aws:s3/bucketVersioning:BucketVersioning": "aws_s3_bucket_versioning",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration":
        "aws_s3_bucket_server_side_encryption_configuration",
    "aws:s3/bucketPolicy:BucketPolicy": "aws_s3_bucket_policy",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": "aws_s3_bucket_lifecycle_configuration",
    "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration": "aws_s3_bucket_object_lock_configuration",
    "aws:s3/bucketLogging:BucketLogging": "aws_s3_bucket_logging",
    "aws:ecr/repository:Repository": "aws_ecr_repository",
    "aws:eks/cluster:Cluster": "aws_eks_cluster",
    "aws:eks/nodeGroup:NodeGroup": "aws_eks_node_group",
    "aws:cloudtrail/trail:Trail": "aws_cloudtrail",
}
# The same for pulumi-azure, bridged from the azurerm provider that modules/azure uses via CDKTF.
AZURE_TYPE_MAP = {
    "pulumi:providers:azure": "provider.azurerm",
    "azure:core/resourceGroup:ResourceGroup": "azurerm_resource_group",
    "azure:operationalinsights/analyticsWorkspace:AnalyticsWorkspace": "azurerm_log_analytics_workspace",
    "azure:monitoring/diagnosticSetting:DiagnosticSetting": "azurerm_monitor_diagnostic_setting",
    "azure:network/virtualNetwork:VirtualNetwork": "azurerm_virtual_network",
    "azure:network/subnet:Subnet": "azurerm_subnet",
    "azure:network/networkSecurityGroup:NetworkSecurityGroup": "azurerm_network_security_group",
    "azure:network/networkSecurityRule:NetworkSecurityRule": "azurerm_network_security_rule",
    "azure:network/subnetNetworkSecurityGroupAssociation:SubnetNetworkSecurityGroupAssociation":
        "azurerm_subnet_network_security_group_association",
    "azure:network/routeTable:RouteTable": "azurerm_route_table",
    "azure:network/subnetRouteTableAssociation:SubnetRouteTableAssociation": "azurerm_subnet_route_table_association",
    "azure:privatelink/endpoint:Endpoint": "azurerm_private_endpoint",
    "azure:privatedns/zone:Zone": "azurerm_private_dns_zone",
    "azure:privatedns/zoneVirtualNetworkLink:ZoneVirtualNetworkLink": "azurerm_private_dns_zone_virtual_network_link",
    "azure:authorization/userAssignedIdentity:UserAssignedIdentity": "azurerm_user_assigned_identity",
    "azure:authorization/assignment:Assignment": "azurerm_role_assignment",
    "azure:keyvault/keyVault:KeyVault": "azurerm_key_vault",
    "azure:keyvault/key:Key": "azurerm_key_vault_key",
    "azure:compute/diskEncryptionSet:DiskEncryptionSet": "azurerm_disk_encryption_set",
    "azure:storage/account:Account": "azurerm_storage_account",
    "azure:storage/container:Container": "azurerm_storage_container",
    "azure:storage/encryptionScope:EncryptionScope": "azurerm_storage_encryption_scope",
    "azure:storage/containerImmutabilityPolicy:ContainerImmutabilityPolicy":
        "azurerm_storage_container_immutability_policy",
    "azure:containerservice/registry:Registry": "azurerm_container_registry",
    "azure:containerservice/kubernetesCluster:KubernetesCluster": "azurerm_kubernetes_cluster",
    "azure:containerservice/kubernetesClusterNodePool:KubernetesClusterNodePool":
        "azurerm_kubernetes_cluster_node_pool",
}
TYPE_MAP = {**AWS_TYPE_MAP, **AZURE_TYPE_MAP}

# The bridge pluralises repeated blocks (Terraform `rule` -> Pulumi `rules`); back to Terraform names.
RENAMES = {
    "rules": "rule",
    "taints": "taint",
    "encryption_configurations": "encryption_configuration",
    "client_id_lists": "client_id_list",
    # pulumi-azure
    "enabled_logs": "enabled_log",
    "enabled_metrics": "enabled_metric",
    "routes": "route",
    "address_spaces": "address_space",
    "bypasses": "bypass",
}
# Maps whose keys are user data (tag and label names), never property names to convert.
_USER_MAPS = {"tags", "labels", "tags_all", "node_labels"}
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def snake(name: str) -> str:
    return _CAMEL.sub("_", name).lower()


def terraform_attrs(value: Any, *, user_map: bool = False) -> Any:
    """Pulumi's wire inputs (camelCase) as Terraform attributes (snake_case, Terraform block names)."""
    if isinstance(value, dict):
        if user_map:
            return dict(value)
        out = {}
        for k, v in value.items():
            key = RENAMES.get(snake(k), snake(k))
            out[key] = terraform_attrs(v, user_map=key in _USER_MAPS)
        return out
    if isinstance(value, list):
        return [terraform_attrs(v) for v in value]
    return value


@dataclass
class Registered:
    token: str  # Pulumi type token
    name: str  # Pulumi resource name: <env>/<construct path>
    inputs: dict[str, Any]  # as Pulumi sent them (camelCase)

    @property
    def tf_type(self) -> str:
        try:
            return TYPE_MAP[self.token]
        except KeyError:
            raise KeyError(f"{self.token} ({self.name}) has no Terraform type in stacks/pulumi/inventory.py "
                           "TYPE_MAP: add it so parity and the policy gate see it") from None


@dataclass
class RecordingMocks(pulumi.runtime.Mocks):
    registered: list[Registered] = field(default_factory=list)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if args.typ.startswith("sovereign-mlops:"):  # our ComponentResources are not cloud resources
            return None, {}
        self.registered.append(Registered(args.typ, args.name, dict(args.inputs)))
        tf_type = TYPE_MAP.get(args.typ, args.typ)

        def ref(attr: str) -> str:
            return f"${{{tf_type}.{args.name}.{attr}}}"

        state: dict[str, Any] = {k: ref(snake(k)) for k in args.inputs}
        state.update(arn=ref("arn"), keyId=ref("key_id"), name=ref("name"), latestVersion=ref("latest_version"))
        if args.typ == "aws:s3/bucket:Bucket":
            state["bucket"] = ref("bucket")
        if args.typ == "aws:eks/cluster:Cluster":
            state["identities"] = [{"oidcs": [{"issuer": ref("identity[0].oidc[0].issuer")}]}]
        if args.typ.startswith("azure:"):  # the attributes other azurerm resources read
            state.update(principalId=ref("principal_id"), clientId=ref("client_id"),
                         versionlessId=ref("versionless_id"), oidcIssuerUrl=ref("oidc_issuer_url"))
            if args.typ == "azure:containerservice/kubernetesCluster:KubernetesCluster":
                state["kubeletIdentity"] = {"objectId": ref("kubelet_identity[0].object_id")}
        return ref("id"), state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":  # noqa: S105 - a type token
            return {"accountId": MOCK_ACCOUNT, "arn": "${data.aws_caller_identity.caller.arn}",
                    "id": MOCK_ACCOUNT, "userId": "${data.aws_caller_identity.caller.user_id}"}, []
        if args.token == "azure:core/getClientConfig:getClientConfig":  # noqa: S105 - a type token
            return {attr: f"${{data.azurerm_client_config.caller.{snake(attr)}}}"
                    for attr in ("clientId", "objectId", "subscriptionId", "tenantId", "id")}, []
        raise NotImplementedError(f"no mock for the invoke {args.token}")


Transform = Callable[[pulumi.ResourceTransformationArgs], pulumi.ResourceTransformationResult | None]


def render_with_mocks(blueprint: Blueprint | str | Path, *, transform: Transform | None = None) -> list[Registered]:
    """Every resource the program registers for ``blueprint``, under Pulumi's mocks.

    ``transform`` is a Pulumi stack transformation (``pulumi.runtime.register_stack_transformation``,
    which the SDK applies in-process, so it works under mocks):
    how a test changes the program (e.g. weakens one resource) without editing it.
    """
    from stacks.pulumi.program import render_blueprint

    bp = blueprint if isinstance(blueprint, Blueprint) else load_blueprint(blueprint)
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project="sovereign-mlops", stack=bp.name, preview=False)

    @pulumi.runtime.test
    def run() -> None:
        if transform is not None:
            pulumi.runtime.register_stack_transformation(transform)
        render_blueprint(bp)

    try:
        run()
    finally:
        # The mocked root resource outlives set_mocks: drop the transformation, or the next render
        # in this process would inherit it.
        root = pulumi.runtime.get_root_resource()
        if root is not None:
            root._transformations = []
    return mocks.registered


# Pulumi's wire marker of a secret value ({<sig key>: <this>, "value": ...}), as the SDK's rpc module
# spells it; pulumi-azure marks the provider's subscription and tenant ids secret.
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"  # noqa: S105 - pulumi.runtime.rpc._special_secret_sig


def _decode_provider(inputs: dict[str, Any]) -> dict[str, Any]:
    # Provider inputs travel JSON-encoded when they are not strings.
    out = {}
    for k, v in inputs.items():
        if isinstance(v, dict) and _SECRET_SIG in v.values():
            v = v.get("value")
        if isinstance(v, str) and v[:1] in "[{":
            with contextlib.suppress(ValueError):
                v = json.loads(v)
        out[k] = v
    return out


def terraform_documents(registered: list[Registered]) -> dict[str, dict[str, Any]]:
    """One Terraform-JSON-shaped document per environment: ``provider`` (aws or azurerm) and ``resource``,
    resource names being the Pulumi names (``<env>/<construct path>``)."""
    docs: dict[str, dict[str, Any]] = {}
    for r in registered:
        env = r.name.split("/", 1)[0]
        doc = docs.setdefault(env, {"provider": {}, "resource": {}})
        if r.tf_type.startswith("provider."):
            name = r.tf_type.removeprefix("provider.")
            doc["provider"].setdefault(name, []).append(terraform_attrs(_decode_provider(r.inputs)))
            continue
        doc["resource"].setdefault(r.tf_type, {})[r.name] = terraform_attrs(r.inputs)
    return docs
