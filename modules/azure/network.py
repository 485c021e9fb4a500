"""The VNet: one subnet per blueprint segment, each behind its own NSG that denies everything but
the declared flows, and a route table sending the cluster's only way out to the egress firewall.

Azure's default NSG rules allow all traffic inside the VNet (AllowVnetInBound/OutBound, priority
65000) and all outbound to the internet. We put explicit deny-all rules at priority 4096 (the
lowest a user rule can have) in both directions, and the declared flows above them, so the
defaults never apply.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from blueprints.schema import Flow, Network, SegmentName
from modules.azure.common import LogSink, diagnostics, merged_tags
from modules.azure.posture import SUBNET
from modules.cdk import Construct, azurerm

DENY_ALL_PRIORITY = 4096
_FIRST_PRIORITY = 100


@dataclass(frozen=True)
class PlatformFlow:
    """A flow the platform itself needs, stated as explicitly as a blueprint flow."""

    name: str
    source: str  # CIDR
    destination: str  # CIDR
    ports: tuple[str, ...]
    segment: SegmentName  # the segment whose NSG carries both directions
    description: str
    protocol: str = "Tcp"  # Tcp, Udp or * (NSG protocol names)


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    location: str
    resource_group: str
    network: Network
    # The route table of these segments sends 0.0.0.0/0 to this next hop (Azure Firewall / NVA).
    egress_next_hop: str | None = None
    routed_segments: tuple[SegmentName, ...] = (SegmentName.serving,)
    platform_flows: tuple[PlatformFlow, ...] = field(default_factory=tuple)


def _ports(ports: list[int] | tuple[str, ...]) -> list[str]:
    return [str(p) for p in ports]


class AzureNetwork(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        spec: NetworkSpec,
        kms_key: str | None = None,  # uniform knobs; a VNet stores no data
        tags: dict[str, str] | None = None,
        logging: LogSink | None = None,
    ) -> None:
        super().__init__(scope, id_)
        net = spec.network
        tags = merged_tags(tags)
        vnet_mod, subnet_mod = azurerm("virtual_network"), azurerm("subnet")
        nsg_mod, rule_mod = azurerm("network_security_group"), azurerm("network_security_rule")
        assoc_mod = azurerm("subnet_network_security_group_association")
        self.vnet = vnet_mod.VirtualNetwork(
            self,
            "vnet",
            name=spec.name,
            location=spec.location,
            resource_group_name=spec.resource_group,
            address_space=[str(net.vpc_cidr)],
            tags=tags,
        )
        self.id: str = self.vnet.id
        self.name: str = self.vnet.name
        diagnostics(self, "vnet-diag", target_resource_id=self.vnet.id, logging=logging)
        self.subnet_ids: dict[SegmentName, str] = {}
        self.nsg_ids: dict[SegmentName, str] = {}
        self.cidrs: dict[SegmentName, str] = {s.name: str(s.cidr) for s in net.segments}
        nsg_names: dict[SegmentName, str] = {}
        for seg in net.segments:
            seg_name = str(seg.name)
            subnet = subnet_mod.Subnet(
                self,
                f"subnet-{seg_name}",
                name=f"snet-{seg_name}",
                resource_group_name=spec.resource_group,
                virtual_network_name=self.vnet.name,
                address_prefixes=[str(seg.cidr)],
                # No implicit internet SNAT; NSGs and UDRs apply to private endpoints too.
                **SUBNET,
            )
            nsg = nsg_mod.NetworkSecurityGroup(
                self,
                f"nsg-{seg_name}",
                name=f"nsg-{spec.name}-{seg_name}",
                location=spec.location,
                resource_group_name=spec.resource_group,
                tags=tags,
            )
            assoc_mod.SubnetNetworkSecurityGroupAssociation(
                self, f"nsg-assoc-{seg_name}", subnet_id=subnet.id, network_security_group_id=nsg.id
            )
            diagnostics(
                self, f"nsg-diag-{seg_name}", target_resource_id=nsg.id, logging=logging, metrics=False
            )
            self.subnet_ids[seg.name] = subnet.id
            self.nsg_ids[seg.name] = nsg.id
            nsg_names[seg.name] = nsg.name
        self._subnets = {s.name: s for s in net.segments}

        self._rg = spec.resource_group
        self._nsg_names = nsg_names
        self._next_priority: dict[tuple[SegmentName, str], int] = {}
        for i, flow in enumerate(net.flows):
            self._declared_flow(i, flow)
        for pf in spec.platform_flows:
            for direction in ("Inbound", "Outbound"):
                self._rule(
                    pf.segment,
                    direction,
                    pf.name,
                    src=pf.source,
                    dst=pf.destination,
                    ports=list(pf.ports),
                    protocol=pf.protocol,
                    description=pf.description,
                )

        for seg in net.segments:
            for direction in ("Inbound", "Outbound"):
                rule_mod.NetworkSecurityRule(
                    self,
                    f"deny-all-{seg.name}-{direction.lower()}",
                    name=f"deny-all-{direction.lower()}",
                    resource_group_name=spec.resource_group,
                    network_security_group_name=nsg_names[seg.name],
                    priority=DENY_ALL_PRIORITY,
                    direction=direction,
                    access="Deny",
                    protocol="*",
                    source_address_prefix="*",
                    source_port_range="*",
                    destination_address_prefix="*",
                    destination_port_range="*",
                    description="zero trust: everything not declared in the blueprint is denied",
                )

        self.route_table_id: str | None = None
        if spec.egress_next_hop:
            rt = azurerm("route_table").RouteTable(
                self,
                "routes",
                name=f"rt-{spec.name}-egress",
                location=spec.location,
                resource_group_name=spec.resource_group,
                # Routes learnt from on-premises must not bypass the firewall.
                bgp_route_propagation_enabled=False,
                route=[
                    {
                        "name": "default-via-firewall",
                        "addressPrefix": "0.0.0.0/0",
                        "nextHopType": "VirtualAppliance",
                        "nextHopInIpAddress": spec.egress_next_hop,
                    }
                ],
                tags=tags,
            )
            self.route_table_id = rt.id
            for seg_name in spec.routed_segments:
                if seg_name in self.subnet_ids:
                    azurerm("subnet_route_table_association").SubnetRouteTableAssociation(
                        self, f"routes-{seg_name}", subnet_id=self.subnet_ids[seg_name], route_table_id=rt.id
                    )

    def _rule(
        self,
        segment: SegmentName,
        direction: str,
        name: str,
        *,
        src: str,
        dst: str,
        ports: list[str],
        protocol: str,
        description: str,
    ) -> None:
        key = (segment, direction)
        priority = self._next_priority.get(key, _FIRST_PRIORITY)
        self._next_priority[key] = priority + 10
        azurerm("network_security_rule").NetworkSecurityRule(
            self,
            f"rule-{segment}-{direction.lower()}-{name}",
            name=name,
            resource_group_name=self._rg,
            network_security_group_name=self._nsg_names[segment],
            priority=priority,
            direction=direction,
            access="Allow",
            protocol=protocol,
            source_address_prefix=src,
            source_port_range="*",
            destination_address_prefix=dst,
            # Azure wants "any port" as the single range "*", not as a list entry.
            destination_port_range="*" if ports == ["*"] else None,
            destination_port_ranges=None if ports == ["*"] else ports,
            description=description[:140],
        )

    def _declared_flow(self, index: int, flow: Flow) -> None:
        src = str(self._subnets[flow.source].cidr)
        # Traffic to the egress segment is internet-bound traffic routed through the firewall there:
        # NSGs see the final destination, not the next hop, so the outbound rule names "Internet".
        outbound_dst = "Internet" if flow.to is SegmentName.egress else str(self._subnets[flow.to].cidr)
        inbound_dst = str(self._subnets[flow.to].cidr)
        protocol = "Tcp" if flow.protocol == "tcp" else "Udp"
        desc = flow.description or f"blueprint flow {flow.source} -> {flow.to}"
        name = f"flow-{index}-{flow.source}-to-{flow.to}"
        ports = _ports(flow.ports)
        self._rule(
            flow.source,
            "Outbound",
            name,
            src=src,
            dst=outbound_dst,
            ports=ports,
            protocol=protocol,
            description=desc,
        )
        if flow.to is not SegmentName.egress:
            self._rule(
                flow.to,
                "Inbound",
                name,
                src=src,
                dst=inbound_dst,
                ports=ports,
                protocol=protocol,
                description=desc,
            )
