"""Azure side of ``mlctl infra``: the state backend bootstrap and its pre-flight checks."""

from control_plane.infra.azure.bootstrap import (
    REQUIRED_PROVIDERS,
    AzureBackendInfo,
    PreflightCheck,
    bootstrap_azure,
    preflight,
)

__all__ = ["REQUIRED_PROVIDERS", "AzureBackendInfo", "PreflightCheck", "bootstrap_azure", "preflight"]
