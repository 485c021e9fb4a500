"""The environment model (pydantic). One YAML file in ``blueprints/`` describes one environment,
or several (a multi-cloud blueprint). Every rule a user can break here fails at load time with the
file, the field and the fix; the stacks can then trust what they get.
"""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from blueprints import gpu_catalog
from blueprints.residency import allowed_regions

_SLUG = r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$"
Slug = Annotated[str, Field(pattern=_SLUG, description="lowercase letters, digits and '-', 3-32 chars")]


class Strict(BaseModel):
    # Unknown keys are refused: a typo must not silently drop a security setting.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Cloud(StrEnum):
    aws = "aws"
    azure = "azure"


class SegmentName(StrEnum):
    serving = "serving"
    training = "training"
    data = "data"
    endpoints = "endpoints"
    egress = "egress"


class Classification(StrEnum):
    public = "public"
    internal = "internal"
    confidential = "confidential"
    pii = "pii"


class Tier(StrEnum):
    """How much an environment is trusted with; declared, never guessed from its name.

    The tier decides the approval rule (``policies/release.rego``: dev none, staging one approver,
    prod two distinct approvers plus a security officer for confidential/pii models) and whether an
    asserted identity (``--as``, the OS user) may act there (dev only)."""

    dev = "dev"
    staging = "staging"
    prod = "prod"


class KeyPurpose(StrEnum):
    artifacts = "artifacts"  # model artifacts, registry buckets, ECR/ACR
    cluster = "cluster"  # Kubernetes secrets envelope encryption, node volumes
    logs = "logs"  # flow logs, CloudTrail, CloudWatch / Log Analytics
    signing = "signing"  # asymmetric ECC P-256 key that signs models and audit checkpoints


REQUIRED_KEY_PURPOSES = frozenset(KeyPurpose)


class Segment(Strict):
    name: SegmentName
    cidr: ipaddress.IPv4Network = Field(description="the segment's block; split evenly across the AZs")

    @field_validator("cidr", mode="before")
    @classmethod
    def _strict_cidr(cls, v: object) -> object:
        return _cidr_text(v)


def _cidr_text(v: object) -> object:
    """A CIDR must be written as text with no host bits: YAML `12` would otherwise become 0.0.0.12/32."""
    if isinstance(v, ipaddress.IPv4Network):
        return v
    if not isinstance(v, str):
        raise ValueError(f"{v!r} is not a CIDR block; write it as text, e.g. 10.40.0.0/20")
    try:
        ipaddress.IPv4Network(v, strict=True)
    except ValueError as exc:
        raise ValueError(f"{v!r} is not a valid IPv4 network (e.g. 10.40.0.0/20): {exc}") from None
    return v


class Flow(Strict):
    """A flow allowed from one segment to another; everything else is denied."""

    source: SegmentName = Field(alias="from")
    to: SegmentName
    ports: list[Annotated[int, Field(ge=1, le=65535)]] = Field(min_length=1)
    protocol: Literal["tcp", "udp"] = "tcp"
    description: str = ""


class Network(Strict):
    vpc_cidr: ipaddress.IPv4Network
    availability_zones: int = Field(default=2, ge=2, le=3, description="private subnets span this many AZs")
    segments: list[Segment] = Field(min_length=1)
    flows: list[Flow] = Field(default_factory=list)

    @field_validator("vpc_cidr", mode="before")
    @classmethod
    def _strict_vpc_cidr(cls, v: object) -> object:
        return _cidr_text(v)

    @model_validator(mode="after")
    def _segments_fit(self) -> Network:
        names = [s.name for s in self.segments]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"segment(s) declared twice: {', '.join(dupes)}; declare each segment once")
        for required in (SegmentName.serving, SegmentName.endpoints):
            if required not in names:
                raise ValueError(f"segment '{required}' is required; add it under network.segments")
        for seg in self.segments:
            if not seg.cidr.subnet_of(self.vpc_cidr):
                raise ValueError(
                    f"segment '{seg.name}' CIDR {seg.cidr} is outside vpc_cidr {self.vpc_cidr}; "
                    "pick a block inside the VPC"
                )
            if seg.cidr.prefixlen > 28 - (self.availability_zones - 1).bit_length():
                raise ValueError(
                    f"segment '{seg.name}' CIDR {seg.cidr} is too small to split across "
                    f"{self.availability_zones} AZs; use /26 or larger"
                )
        for i, a in enumerate(self.segments):
            for b in self.segments[i + 1 :]:
                if a.cidr.overlaps(b.cidr):
                    raise ValueError(
                        f"segments '{a.name}' ({a.cidr}) and '{b.name}' ({b.cidr}) overlap; "
                        "give each segment its own block"
                    )
        declared = set(names)
        for f in self.flows:
            for end in (f.source, f.to):
                if end not in declared:
                    raise ValueError(f"flow {f.source}->{f.to} names segment '{end}' which is not declared")
        return self

    def segment(self, name: SegmentName) -> Segment | None:
        return next((s for s in self.segments if s.name == name), None)

    @property
    def has_egress(self) -> bool:
        return self.segment(SegmentName.egress) is not None


class Taint(Strict):
    key: str
    value: str = "true"
    effect: Literal["NoSchedule", "NoExecute", "PreferNoSchedule"] = "NoSchedule"


GPU_TAINT = Taint(key="nvidia.com/gpu", value="true", effect="NoSchedule")


class NodePool(Strict):
    name: Slug
    instance_type: str
    min_size: int = Field(ge=0, le=100)
    desired_size: int = Field(ge=0, le=100)
    max_size: int = Field(ge=1, le=100)
    disk_size_gb: int = Field(default=100, ge=20, le=4096)
    labels: dict[str, str] = Field(default_factory=dict)
    taints: list[Taint] = Field(default_factory=list)

    @model_validator(mode="after")
    def _sizes(self) -> NodePool:
        if not self.min_size <= self.desired_size <= self.max_size:
            raise ValueError(
                f"node pool '{self.name}': need min_size <= desired_size <= max_size, got "
                f"{self.min_size} / {self.desired_size} / {self.max_size}"
            )
        return self

    @property
    def effective_taints(self) -> list[Taint]:
        """GPU pools always carry the nvidia.com/gpu taint, whether or not the YAML lists it."""
        return self.taints if any(t.key == GPU_TAINT.key for t in self.taints) else [*self.taints, GPU_TAINT]


class Cluster(Strict):
    name: Slug
    kubernetes_version: str = Field(default="1.31", pattern=r"^1\.\d{2}$")
    system_pool: NodePool
    gpu_pools: list[NodePool] = Field(default_factory=list)


class Registries(Strict):
    model_bucket: str = Field(
        pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", description="artifact bucket name"
    )
    log_bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    container_repositories: list[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9/_.-]*$")]] = Field(
        default_factory=list
    )
    object_lock_days: int = Field(default=30, ge=1, le=3650, description="governance-mode retention")
    noncurrent_version_days: int = Field(default=90, ge=1)


class Kms(Strict):
    purposes: list[KeyPurpose] = Field(default_factory=lambda: list(KeyPurpose))
    deletion_window_days: int = Field(default=30, ge=7, le=30)
    admin_principals: list[str] = Field(
        default_factory=list,
        description="IAM ARNs allowed to administer the keys; default: the account root only",
    )

    @field_validator("purposes")
    @classmethod
    def _all_purposes(cls, v: list[KeyPurpose]) -> list[KeyPurpose]:
        missing = REQUIRED_KEY_PURPOSES - set(v)
        if missing:
            raise ValueError(
                f"missing key purpose(s) {', '.join(sorted(missing))}; every environment needs "
                "artifacts, cluster, logs and signing keys"
            )
        return v


class Logging(Strict):
    retention_days: int = Field(default=365, ge=365, description="regulators ask for a year or more")


class Tags(Strict):
    owner: str = Field(min_length=1)
    data_classification: Classification
    cost_center: str | None = None
    extra: dict[str, str] = Field(default_factory=dict)

    def as_dict(self, environment: str) -> dict[str, str]:
        out = {
            "Environment": environment,
            "Owner": self.owner,
            "DataClassification": str(self.data_classification),
            "ManagedBy": "sovereign-mlops",
        }
        if self.cost_center:
            out["CostCenter"] = self.cost_center
        out.update(self.extra)
        return out


class Emulator(Strict):
    """The local AWS emulator (moto server) that stands in for AWS on a laptop or in CI."""

    endpoint: str = Field(default="http://127.0.0.1:4566", pattern=r"^https?://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$")


class StateBackend(Strict):
    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    key_prefix: str = Field(default="sovereign-mlops", pattern=r"^[A-Za-z0-9/_.-]+$")


# Azure resource names have per-service rules; checking them here turns a failed `terraform apply`
# half-way through into a load-time error naming the field. Source: "Naming rules and restrictions
# for Azure resources" (learn.microsoft.com), reviewed 2026-11.
_AZ_STORAGE_ACCOUNT = r"^[a-z0-9]{3,24}$"
_AZ_KEY_VAULT = r"^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$"  # and no "--": checked below
_AZ_REGISTRY = r"^[a-zA-Z0-9]{5,50}$"
_AZ_RESOURCE_GROUP = r"^[-\w.()]{0,89}[-\w()]$"
_AZ_CONTAINER = r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$"  # and no "--"
_UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


class AzureAks(Strict):
    """AKS settings that have no AWS counterpart (Entra ID admins, overlay networking)."""

    admin_group_object_ids: list[Annotated[str, Field(pattern=_UUID)]] = Field(
        min_length=1, description="Entra ID groups bound to cluster-admin (local accounts are off)"
    )
    sku_tier: Literal["Standard", "Premium"] = "Standard"
    service_cidr: ipaddress.IPv4Network = ipaddress.IPv4Network("172.16.0.0/16")
    dns_service_ip: ipaddress.IPv4Address = ipaddress.IPv4Address("172.16.0.10")
    pod_cidr: ipaddress.IPv4Network = ipaddress.IPv4Network("192.168.0.0/16")

    @model_validator(mode="after")
    def _dns_in_service_cidr(self) -> AzureAks:
        if self.dns_service_ip not in self.service_cidr:
            raise ValueError(
                f"dns_service_ip {self.dns_service_ip} must be inside service_cidr {self.service_cidr}"
            )
        return self


class AzureSettings(Strict):
    """What an Azure environment needs beyond the shared model. The shared fields map as follows:
    ``registries.model_bucket`` / ``log_bucket`` are blob containers in ``storage_account``,
    ``state.bucket`` is the blob container in ``state_storage_account``."""

    subscription_id: str = Field(pattern=_UUID)
    tenant_id: str = Field(pattern=_UUID)
    resource_group: str = Field(pattern=_AZ_RESOURCE_GROUP, description="the platform's resource group")
    storage_account: str = Field(
        pattern=_AZ_STORAGE_ACCOUNT, description="model artifacts: 3-24 lowercase a-z0-9"
    )
    key_vault: str = Field(pattern=_AZ_KEY_VAULT, description="3-24 letters, digits, single hyphens")
    container_registry: str = Field(pattern=_AZ_REGISTRY, description="ACR name: 5-50 letters and digits")
    state_resource_group: str = Field(pattern=_AZ_RESOURCE_GROUP)
    state_storage_account: str = Field(pattern=_AZ_STORAGE_ACCOUNT, description="3-24 lowercase a-z0-9")
    state_key_vault: str = Field(pattern=_AZ_KEY_VAULT, description="holds the state account's CMK")
    egress_firewall_ip: ipaddress.IPv4Address = Field(
        description="next hop (Azure Firewall / NVA) for the cluster's only route out (0.0.0.0/0)"
    )
    operator_ip_ranges: list[ipaddress.IPv4Network] = Field(
        default_factory=list,
        description="public ranges allowed to the state account and Key Vault firewalls (default: none)",
    )
    aks: AzureAks

    @model_validator(mode="after")
    def _no_double_hyphens(self) -> AzureSettings:
        # pydantic's regex engine has no look-ahead, so this rule of Azure's is checked here
        for field in ("key_vault", "state_key_vault"):
            if "--" in getattr(self, field):
                raise ValueError(f"{field} '{getattr(self, field)}': Key Vault names cannot contain '--'")
        return self


TIER_HINT = (
    "add 'tier: dev', 'tier: staging' or 'tier: prod' to the environment: it decides the approval "
    "rule and whether an asserted identity may act there (it is never guessed from the name)"
)


class Environment(Strict):
    name: Slug
    tier: Tier = Field(description="dev | staging | prod; required, never inferred from the name")
    cloud: Cloud
    region: str
    account_id: str | None = Field(default=None, pattern=r"^\d{12}$")
    network: Network
    cluster: Cluster
    registries: Registries
    kms: Kms = Field(default_factory=Kms)
    logging: Logging = Field(default_factory=Logging)
    tags: Tags
    state: StateBackend
    emulator: Emulator | None = None
    azure: AzureSettings | None = None

    # Field validators (not one model validator) so each error names its field: `region: ...`,
    # `cluster: gpu_pools[0].instance_type ...`. `cloud` is declared first, so info.data has it.
    @field_validator("region")
    @classmethod
    def _uae_region(cls, region: str, info: ValidationInfo) -> str:
        cloud = info.data.get("cloud")
        if cloud is not None and region not in allowed_regions(cloud):
            raise ValueError(
                f"'{region}' is outside the UAE; {cloud} allows only "
                f"{', '.join(allowed_regions(cloud))} (UAE data residency)"
            )
        return region

    @field_validator("cluster")
    @classmethod
    def _catalog(cls, cluster: Cluster, info: ValidationInfo) -> Cluster:
        cloud = info.data.get("cloud")
        if cloud is None:
            return cluster
        cloud = str(cloud)
        where = info.data.get("region") or f"the {cloud} UAE regions"
        for i, pool in enumerate(cluster.gpu_pools):
            if gpu_catalog.gpu_info(cloud, pool.instance_type) is None:
                raise ValueError(
                    f"gpu_pools[{i}].instance_type '{pool.instance_type}' (pool '{pool.name}') is not a GPU "
                    f"type offered in {where}; use one of {gpu_catalog.allowed_gpu_types(cloud)} "
                    f"(catalog reviewed {gpu_catalog.CATALOG_REVIEWED}, blueprints/gpu_catalog.py)"
                )
        if not gpu_catalog.is_system_type(cloud, cluster.system_pool.instance_type):
            raise ValueError(
                f"system_pool.instance_type '{cluster.system_pool.instance_type}' is not a general "
                "purpose type; see blueprints/gpu_catalog.py for the allowed families"
            )
        return cluster

    @model_validator(mode="after")
    def _unique_pools(self) -> Environment:
        names = [p.name for p in [self.cluster.system_pool, *self.cluster.gpu_pools]]
        if len(names) != len(set(names)):
            raise ValueError("node pool names must be unique across system_pool and gpu_pools")
        return self

    @model_validator(mode="after")
    def _cloud_settings(self) -> Environment:
        if self.cloud == Cloud.azure:
            if self.azure is None:
                raise ValueError(
                    "cloud 'azure' needs an 'azure' block (subscription_id, tenant_id, resource_group, "
                    "storage_account, key_vault, ...); see blueprints/uae-prod-azure.yaml"
                )
            if self.emulator is not None:
                raise ValueError("there is no Azure emulator; remove 'emulator' from an azure environment")
            if self.account_id is not None:
                raise ValueError("account_id is an AWS account; use azure.subscription_id for Azure")
            for pool in [self.cluster.system_pool, *self.cluster.gpu_pools]:
                if not re.match(r"^[a-z][a-z0-9]{0,11}$", pool.name):
                    raise ValueError(
                        f"node pool '{pool.name}': AKS pool names are 1-12 lowercase letters and digits, "
                        "starting with a letter (no hyphens), e.g. 'gpuinfer'"
                    )
            containers = {
                "state.bucket": self.state.bucket,
                "registries.model_bucket": self.registries.model_bucket,
                "registries.log_bucket": self.registries.log_bucket,
            }
            for field, value in containers.items():
                if not re.match(_AZ_CONTAINER, value) or "--" in value:
                    raise ValueError(
                        f"{field} '{value}' is a blob container name on Azure: use 3-63 lowercase letters, "
                        "digits and single hyphens (no dots)"
                    )
        elif self.azure is not None:
            raise ValueError("the 'azure' block applies to cloud 'azure' only; remove it or set cloud: azure")
        return self

    @property
    def is_local(self) -> bool:
        return self.emulator is not None

    def tag_map(self) -> dict[str, str]:
        return self.tags.as_dict(self.name)


class Blueprint(BaseModel):
    """What a file holds: one environment, or several for a multi-cloud blueprint."""

    model_config = ConfigDict(frozen=True)

    name: str
    source: str = Field(description="the file it was loaded from")
    environments: list[Environment]

    def environment(self, name: str | None = None) -> Environment:
        if name is None:
            return self.environments[0]
        for env in self.environments:
            if env.name == name:
                return env
        raise KeyError(name)


class MultiCloudFile(Strict):
    """The YAML shape of a multi-cloud blueprint: a name and a list of environments."""

    name: Slug
    environments: list[Environment] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> MultiCloudFile:
        names = [e.name for e in self.environments]
        if len(names) != len(set(names)):
            raise ValueError("environment names must be unique within a multi-cloud blueprint")
        return self


def slug_ok(value: str) -> bool:
    return re.match(_SLUG, value) is not None
