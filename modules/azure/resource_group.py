"""A resource group: the unit of ownership, RBAC scope and lifecycle on Azure."""

from __future__ import annotations

from dataclasses import dataclass

from modules.azure.common import LogSink, merged_tags
from modules.cdk import Construct, azurerm


@dataclass(frozen=True)
class ResourceGroupSpec:
    name: str
    location: str


class ResourceGroup(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        spec: ResourceGroupSpec,
        kms_key: str | None = None,  # uniform knobs; a resource group holds no data
        tags: dict[str, str] | None = None,
        logging: LogSink | None = None,  # activity log is subscription-wide
    ) -> None:
        super().__init__(scope, id_)
        self.group = azurerm("resource_group").ResourceGroup(
            self, "group", name=spec.name, location=spec.location, tags=merged_tags(tags)
        )
        self.name: str = self.group.name
        self.id: str = self.group.id
        self.location = spec.location
