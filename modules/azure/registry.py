"""Azure Container Registry: Premium (the tier with private link, CMK and geo-replication),
admin user and anonymous pull off, public network access and export off, CMK through a
user-assigned identity, zone-redundant and geo-replicated to the other UAE region only.
"""

from __future__ import annotations

from dataclasses import dataclass

from modules.azure.common import PAIRED_REGION, LogSink, is_zonal, merged_tags
from modules.azure.posture import REGISTRY
from modules.azure.private_link import EndpointSpec, harden
from modules.cdk import Construct, azurerm


@dataclass(frozen=True)
class RegistrySpec:
    name: str
    location: str
    resource_group: str
    cmk_identity_id: str
    cmk_identity_client_id: str
    untagged_retention_days: int = 30
    geo_replicate: bool = True
    endpoint: EndpointSpec | None = None


class ContainerRegistry(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        spec: RegistrySpec,
        kms_key: str | None = None,
        tags: dict[str, str] | None = None,
        logging: LogSink | None = None,
    ) -> None:
        super().__init__(scope, id_)
        cr = azurerm("container_registry")
        replica = PAIRED_REGION.get(spec.location)
        self.registry = cr.ContainerRegistry(
            self,
            "registry",
            name=spec.name,
            location=spec.location,
            resource_group_name=spec.resource_group,
            **REGISTRY,  # Premium, no admin user, private only (modules/azure/posture.py)
            retention_policy_in_days=spec.untagged_retention_days,
            zone_redundancy_enabled=is_zonal(spec.location),
            identity=cr.ContainerRegistryIdentity(type="UserAssigned", identity_ids=[spec.cmk_identity_id]),
            encryption=(
                [
                    cr.ContainerRegistryEncryption(
                        key_vault_key_id=kms_key, identity_client_id=spec.cmk_identity_client_id
                    )
                ]
                if kms_key
                else None
            ),
            georeplications=(
                [
                    cr.ContainerRegistryGeoreplications(
                        location=replica, zone_redundancy_enabled=is_zonal(replica), tags=merged_tags(tags)
                    )
                ]
                if spec.geo_replicate and replica
                else None
            ),
            tags=merged_tags(tags),
        )
        self.id: str = self.registry.id
        harden(self, resource_id=self.registry.id, name=spec.name, location=spec.location,
               resource_group=spec.resource_group, subresource="registry", endpoint=spec.endpoint,
               logging=logging, tags=tags)
