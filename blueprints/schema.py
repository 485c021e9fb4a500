"""The environment model (pydantic). One YAML file in ``blueprints/`` describes one environment,
or several (a multi-cloud blueprint). Every rule a user can break here fails at load time with the
file, the field and the fix; the stacks can then trust what they get.
"""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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
        if isinstance(v, str):
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
    model_bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", description="artifact bucket name")
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


class Environment(Strict):
    name: Slug
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

    @model_validator(mode="after")
    def _residency_and_catalog(self) -> Environment:
        allowed = allowed_regions(self.cloud)
        if self.region not in allowed:
            raise ValueError(
                f"region '{self.region}' is outside the UAE; {self.cloud} allows only "
                f"{', '.join(allowed)} (UAE data residency)"
            )
        cloud = str(self.cloud)
        for pool in self.cluster.gpu_pools:
            if gpu_catalog.gpu_info(cloud, pool.instance_type) is None:
                raise ValueError(
                    f"GPU pool '{pool.name}': instance type '{pool.instance_type}' is not a GPU type offered "
                    f"in {self.region}; use one of {gpu_catalog.allowed_gpu_types(cloud)} "
                    f"(catalog reviewed {gpu_catalog.CATALOG_REVIEWED}, blueprints/gpu_catalog.py)"
                )
        if not gpu_catalog.is_system_type(cloud, self.cluster.system_pool.instance_type):
            raise ValueError(
                f"system pool instance type '{self.cluster.system_pool.instance_type}' is not a general "
                "purpose type; see blueprints/gpu_catalog.py for the allowed families"
            )
        names = [p.name for p in [self.cluster.system_pool, *self.cluster.gpu_pools]]
        if len(names) != len(set(names)):
            raise ValueError("node pool names must be unique across system_pool and gpu_pools")
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
