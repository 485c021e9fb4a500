"""Log Analytics: the workspace every diagnostic setting writes to.

Ingestion and query over the public internet are off: diagnostic settings ride the Azure backbone,
and interactive queries go through an Azure Monitor Private Link Scope (see docs/azure.md).
Local (shared-key) authentication is off, so only Entra ID identities can read or write.
"""

from __future__ import annotations

from dataclasses import dataclass

from modules.azure.common import LogSink, diagnostics, merged_tags
from modules.azure.posture import LOG_WORKSPACE
from modules.cdk import Construct, azurerm


@dataclass(frozen=True)
class WorkspaceSpec:
    name: str
    location: str
    resource_group: str
    retention_days: int = 365


class LogAnalytics(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        spec: WorkspaceSpec,
        kms_key: str | None = None,  # CMK needs a dedicated Log Analytics cluster (docs)
        tags: dict[str, str] | None = None,
        logging: LogSink | None = None,
    ) -> None:
        super().__init__(scope, id_)
        # Log Analytics keeps at most 730 days interactively; longer goes to archive (docs).
        retention = min(max(spec.retention_days, 365), 730)
        self.workspace = azurerm("log_analytics_workspace").LogAnalyticsWorkspace(
            self,
            "workspace",
            name=spec.name,
            location=spec.location,
            resource_group_name=spec.resource_group,
            retention_in_days=retention,
            **LOG_WORKSPACE,
            tags=merged_tags(tags),
        )
        self.id: str = self.workspace.id
        self.sink = LogSink(workspace_id=self.id)
        # The workspace audits its own queries (who read which logs) into itself.
        diagnostics(self, "diag", target_resource_id=self.id, logging=logging or self.sink)
