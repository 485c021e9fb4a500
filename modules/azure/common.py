"""Knobs shared by the Azure constructs: the log sink, tags, zones, diagnostic settings."""

from __future__ import annotations

from dataclasses import dataclass

from modules.cdk import Construct, azurerm

# UAE Central has no availability zones; UAE North has three. Zonal settings are only emitted
# where the region has zones, otherwise Azure rejects the request.
_ZONAL_REGIONS = frozenset({"uaenorth"})
# The paired region of each UAE region is the other UAE region, so geo-redundancy stays in-country.
PAIRED_REGION = {"uaenorth": "uaecentral", "uaecentral": "uaenorth"}


@dataclass(frozen=True)
class LogSink:
    """Where diagnostic settings send logs and metrics."""

    workspace_id: str


def zones(region: str) -> list[str] | None:
    return ["1", "2", "3"] if region in _ZONAL_REGIONS else None


def is_zonal(region: str) -> bool:
    return region in _ZONAL_REGIONS


def merged_tags(tags: dict[str, str] | None, **extra: str) -> dict[str, str]:
    return {**(tags or {}), **extra}


def diagnostics(
    scope: Construct,
    id_: str,
    *,
    target_resource_id: str,
    logging: LogSink | None,
    logs: bool = True,
    metrics: bool = True,
) -> Construct | None:
    """A diagnostic setting sending every log category (``allLogs``) and metric to the sink.

    ``logs``/``metrics`` say what the resource type offers (an NSG has no metrics, a VNet no audit
    logs beyond allLogs); asking Azure for a category a type lacks fails the apply.
    """
    if logging is None:
        return None
    mds = azurerm("monitor_diagnostic_setting")
    return mds.MonitorDiagnosticSetting(
        scope,
        id_,
        name="to-log-analytics",
        target_resource_id=target_resource_id,
        log_analytics_workspace_id=logging.workspace_id,
        enabled_log=[mds.MonitorDiagnosticSettingEnabledLog(category_group="allLogs")] if logs else None,
        enabled_metric=[mds.MonitorDiagnosticSettingEnabledMetric(category="AllMetrics")]
        if metrics
        else None,
    )
