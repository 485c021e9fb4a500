"""Network: a VPC cut into the blueprint's segments, private by construction.

- every segment gets one private subnet per AZ (the segment's block split evenly); no subnet maps
  public IPs;
- private segments have a route table with only the local route: no internet gateway, no NAT. An
  egress segment, when declared, is the only one routed to an internet gateway (with NAT gateways
  for its proxies);
- AWS APIs are reached through interface endpoints in the endpoints segment plus an S3 gateway
  endpoint, so nodes pull images and models without the internet;
- the default security group has no rules; each segment has its own group that admits only the
  declared flows (never 0.0.0.0/0);
- VPC flow logs (ALL traffic) go to a KMS-encrypted log group kept for the blueprint's retention.
"""

from __future__ import annotations

import string
from typing import Any

from blueprints.schema import KeyPurpose, Network, SegmentName
from modules.aws.common import (
    DEFAULT_REGION,
    LogSink,
    log_delivery_role,
    log_retention,
    merged_tags,
)
from modules.aws.kms import own_key
from modules.aws.posture import INTERFACE_ENDPOINTS, split_cidr
from modules.cdk import Construct, aws


class SegmentedNetwork(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        spec: Network,
        kms_key: str | None = None,
        tags: dict[str, str] | None = None,
        logging: LogSink | None = None,
        name: str = "mlops",
        region: str = DEFAULT_REGION,
    ) -> None:
        super().__init__(scope, id)
        logging = logging or LogSink()
        key_arn = kms_key or logging.kms_key_arn or own_key(self, "logs-key", KeyPurpose.logs, name=name,
                                                            region=region, tags=tags)
        ec2 = {m: aws(m) for m in ("vpc", "subnet", "route_table", "route_table_association", "security_group",
                                   "security_group_rule", "default_security_group", "vpc_endpoint", "flow_log")}
        # AZ names are derived, not looked up: me-central-1 has a, b and c (and a data source
        # would make the subnet count unknown at plan time).
        self.azs = [f"{region}{string.ascii_lowercase[i]}" for i in range(spec.availability_zones)]

        self.vpc = ec2["vpc"].Vpc(
            self, "vpc", cidr_block=str(spec.vpc_cidr), enable_dns_support=True, enable_dns_hostnames=True,
            tags=merged_tags(tags, Name=name),
        )
        ec2["default_security_group"].DefaultSecurityGroup(
            self, "default-sg", vpc_id=self.vpc.id, ingress=[], egress=[],
            tags=merged_tags(tags, Name=f"{name}-default-deny-all"),
        )

        self.subnets: dict[SegmentName, list[Any]] = {}
        self.route_tables: dict[SegmentName, Any] = {}
        for seg in spec.segments:
            rt = ec2["route_table"].RouteTable(
                self, f"rt-{seg.name}", vpc_id=self.vpc.id, tags=merged_tags(tags, Name=f"{name}-{seg.name}")
            )
            self.route_tables[seg.name] = rt
            subnets = []
            for i, (az, block) in enumerate(zip(self.azs, split_cidr(seg.cidr, len(self.azs)), strict=True)):
                sn = ec2["subnet"].Subnet(
                    self, f"subnet-{seg.name}-{i}", vpc_id=self.vpc.id, cidr_block=str(block),
                    availability_zone=az, map_public_ip_on_launch=False,
                    tags=merged_tags(tags, Name=f"{name}-{seg.name}-{az}", Segment=str(seg.name)),
                )
                ec2["route_table_association"].RouteTableAssociation(
                    self, f"rta-{seg.name}-{i}", subnet_id=sn.id, route_table_id=rt.id
                )
                subnets.append(sn)
            self.subnets[seg.name] = subnets

        self.security_groups = self._segment_security_groups(spec, ec2, name, tags)
        if spec.has_egress:
            self._egress(name, tags)
        self._endpoints(spec, ec2, name, region, tags)
        self._flow_logs(ec2, name, key_arn, log_retention(logging.retention_days), tags)

    def _segment_security_groups(self, spec: Network, ec2: dict[str, Any], name: str,
                                 tags: dict[str, str] | None) -> dict[SegmentName, Any]:
        groups = {
            seg.name: ec2["security_group"].SecurityGroup(
                self, f"sg-{seg.name}", name=f"{name}-{seg.name}", vpc_id=self.vpc.id,
                description=f"{seg.name} segment: only the blueprint's declared flows",
                revoke_rules_on_delete=True, tags=merged_tags(tags, Name=f"{name}-{seg.name}"),
            )
            for seg in spec.segments
        }
        for f in spec.flows:
            for port in f.ports:
                ident = f"{f.source}-to-{f.to}-{f.protocol}-{port}"
                desc = f.description or f"{f.source} to {f.to}"
                # Both ends are stated: ingress on the destination, egress on the source.
                ec2["security_group_rule"].SecurityGroupRule(
                    self, f"in-{ident}", type="ingress", security_group_id=groups[f.to].id,
                    source_security_group_id=groups[f.source].id, protocol=f.protocol,
                    from_port=port, to_port=port, description=desc,
                )
                ec2["security_group_rule"].SecurityGroupRule(
                    self, f"out-{ident}", type="egress", security_group_id=groups[f.source].id,
                    source_security_group_id=groups[f.to].id, protocol=f.protocol,
                    from_port=port, to_port=port, description=desc,
                )
        return groups

    def _egress(self, name: str, tags: dict[str, str] | None) -> None:
        """Only the egress segment reaches the internet: IGW route + one NAT gateway per AZ."""
        igw = aws("internet_gateway").InternetGateway(
            self, "igw", vpc_id=self.vpc.id, tags=merged_tags(tags, Name=f"{name}-egress-only")
        )
        aws("route").Route(
            self, "egress-default-route", route_table_id=self.route_tables[SegmentName.egress].id,
            destination_cidr_block="0.0.0.0/0", gateway_id=igw.id,
        )
        for i, sn in enumerate(self.subnets[SegmentName.egress]):
            eip = aws("eip").Eip(self, f"nat-eip-{i}", domain="vpc", tags=merged_tags(tags, Name=f"{name}-nat-{i}"))
            aws("nat_gateway").NatGateway(
                self, f"nat-{i}", subnet_id=sn.id, allocation_id=eip.id,
                tags=merged_tags(tags, Name=f"{name}-nat-{i}"), depends_on=[igw],
            )

    def _endpoints(self, spec: Network, ec2: dict[str, Any], name: str, region: str,
                   tags: dict[str, str] | None) -> None:
        endpoint_sg = self.security_groups[SegmentName.endpoints]
        self.endpoints: dict[str, Any] = {}
        for service in INTERFACE_ENDPOINTS:
            self.endpoints[service] = ec2["vpc_endpoint"].VpcEndpoint(
                self, f"endpoint-{service.replace('.', '-')}", vpc_id=self.vpc.id,
                service_name=f"com.amazonaws.{region}.{service}", vpc_endpoint_type="Interface",
                subnet_ids=[s.id for s in self.subnets[SegmentName.endpoints]],
                security_group_ids=[endpoint_sg.id], private_dns_enabled=True,
                tags=merged_tags(tags, Name=f"{name}-{service}"),
            )
        private_tables = [rt.id for seg, rt in self.route_tables.items() if seg is not SegmentName.egress]
        self.endpoints["s3"] = ec2["vpc_endpoint"].VpcEndpoint(
            self, "endpoint-s3", vpc_id=self.vpc.id, service_name=f"com.amazonaws.{region}.s3",
            vpc_endpoint_type="Gateway", route_table_ids=private_tables,
            tags=merged_tags(tags, Name=f"{name}-s3"),
        )

    def _flow_logs(self, ec2: dict[str, Any], name: str, key_arn: str, retention: int,
                   tags: dict[str, str] | None) -> None:
        self.flow_log_group = aws("cloudwatch_log_group").CloudwatchLogGroup(
            self, "flow-logs", name=f"/{name}/vpc/flow-logs", retention_in_days=retention, kms_key_id=key_arn,
            tags=merged_tags(tags, Name=f"{name}-flow-logs"),
        )
        role = log_delivery_role(self, "flow-logs", role_name=f"{name}-vpc-flow-logs",
                                 service="vpc-flow-logs.amazonaws.com", log_group_arn=self.flow_log_group.arn,
                                 tags=tags)
        self.flow_log = ec2["flow_log"].FlowLog(
            self, "flow-log", vpc_id=self.vpc.id, traffic_type="ALL", log_destination_type="cloud-watch-logs",
            log_destination=self.flow_log_group.arn, iam_role_arn=role.arn,
            max_aggregation_interval=60, tags=merged_tags(tags, Name=f"{name}-flow-log"),
        )

    def subnet_ids(self, segment: SegmentName) -> list[str]:
        return [s.id for s in self.subnets[segment]]
