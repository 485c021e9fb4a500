"""Private endpoints and the private DNS zones that make the services' own names resolve to them.

With public network access off, Key Vault, ACR and Storage are reachable only through these
endpoints; the zone linked to the VNet turns ``<name>.vault.azure.net`` into the endpoint's
private address for everything inside the network.
"""

from __future__ import annotations

from dataclasses import dataclass

from modules.azure.common import LogSink, diagnostics, merged_tags
from modules.cdk import Construct, azurerm

# subresource ("group id") -> private DNS zone. Source: "Azure Private Endpoint private DNS zone
# values" (learn.microsoft.com), reviewed 2026-11.
PRIVATE_DNS_ZONES: dict[str, str] = {
    "vault": "privatelink.vaultcore.azure.net",
    "registry": "privatelink.azurecr.io",
    "blob": "privatelink.blob.core.windows.net",
}


@dataclass(frozen=True)
class DnsZonesSpec:
    resource_group: str
    virtual_network_id: str
    subresources: tuple[str, ...] = tuple(PRIVATE_DNS_ZONES)


class PrivateDnsZones(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        spec: DnsZonesSpec,
        kms_key: str | None = None,  # uniform knobs
        tags: dict[str, str] | None = None,
        logging: LogSink | None = None,  # private DNS zones have no diagnostic settings
    ) -> None:
        super().__init__(scope, id_)
        self.zone_ids: dict[str, str] = {}
        for sub in spec.subresources:
            zone = azurerm("private_dns_zone").PrivateDnsZone(
                self,
                f"zone-{sub}",
                name=PRIVATE_DNS_ZONES[sub],
                resource_group_name=spec.resource_group,
                tags=merged_tags(tags),
            )
            azurerm("private_dns_zone_virtual_network_link").PrivateDnsZoneVirtualNetworkLink(
                self,
                f"link-{sub}",
                name=f"link-{sub}",
                resource_group_name=spec.resource_group,
                private_dns_zone_name=zone.name,
                virtual_network_id=spec.virtual_network_id,
                registration_enabled=False,
                tags=merged_tags(tags),
            )
            self.zone_ids[sub] = zone.id


@dataclass(frozen=True)
class EndpointSpec:
    """Where a service's private endpoint goes: the endpoints subnet and the subresource's zone."""

    subnet_id: str
    dns_zone_id: str


def private_endpoint(
    scope: Construct,
    id_: str,
    *,
    name: str,
    location: str,
    resource_group: str,
    resource_id: str,
    subresource: str,
    endpoint: EndpointSpec,
    tags: dict[str, str] | None,
) -> Construct:
    pe = azurerm("private_endpoint")
    return pe.PrivateEndpoint(
        scope,
        id_,
        name=f"pe-{name}-{subresource}",
        location=location,
        resource_group_name=resource_group,
        subnet_id=endpoint.subnet_id,
        private_service_connection=pe.PrivateEndpointPrivateServiceConnection(
            name=f"psc-{name}-{subresource}",
            private_connection_resource_id=resource_id,
            subresource_names=[subresource],
            is_manual_connection=False,
        ),
        private_dns_zone_group=pe.PrivateEndpointPrivateDnsZoneGroup(
            name="default", private_dns_zone_ids=[endpoint.dns_zone_id]
        ),
        tags=merged_tags(tags),
    )


def harden(
    scope: Construct,
    *,
    resource_id: str,
    name: str,
    location: str,
    resource_group: str,
    subresource: str,
    endpoint: EndpointSpec | None,
    logging: LogSink | None,
    tags: dict[str, str] | None,
    logs: bool = True,
) -> None:
    """What every private data service (Key Vault, ACR, Storage) gets: a diagnostic setting to the
    log sink (construct ``diag``) and, where the blueprint gives it one, its private endpoint
    (construct ``endpoint``: with public access off it is the service's only way in).

    ``logs=False`` where the resource itself has metrics only (a storage account: its reads and
    writes are logged on the blob service, which the caller adds).
    """
    diagnostics(scope, "diag", target_resource_id=resource_id, logging=logging, logs=logs)
    if endpoint is not None:
        private_endpoint(
            scope,
            "endpoint",
            name=name,
            location=location,
            resource_group=resource_group,
            resource_id=resource_id,
            subresource=subresource,
            endpoint=endpoint,
            tags=tags,
        )
