"""Azure Resource Manager plumbing shared by the pre-flight and the bootstrap: the management
clients, the endpoint, one step = one ARM call whose SDK errors become an InfraError naming the
step and the fix, and reading fields from SDK models of any generation.

The Azure SDK modules are imported inside the functions that use them: they are heavy, and only
``mlctl infra`` on an Azure environment needs them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from blueprints.schema import AzureSettings, Environment
from control_plane.errors import InfraError
from control_plane.settings import current as settings

ARM_ENDPOINT = "https://management.azure.com"

T = TypeVar("T")


@dataclass
class Clients:
    resource: Any
    compute: Any
    keyvault: Any
    storage: Any
    msi: Any
    authorization: Any


def azure_settings(env: Environment) -> AzureSettings:
    if env.azure is None:
        raise InfraError(
            f"environment '{env.name}' is not an Azure environment (cloud: {env.cloud})",
            hint="bootstrap_azure takes an environment with cloud: azure and an azure block",
        )
    return env.azure


def default_credential() -> Any:
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def make_clients(sub: str, credential: Any, base_url: str, client_options: dict[str, Any]) -> Clients:
    from azure.mgmt.authorization import AuthorizationManagementClient
    from azure.mgmt.compute import ComputeManagementClient
    from azure.mgmt.keyvault import KeyVaultManagementClient
    from azure.mgmt.msi import ManagedServiceIdentityClient
    from azure.mgmt.resource.resources import ResourceManagementClient
    from azure.mgmt.storage import StorageManagementClient

    kw = {"base_url": base_url, **client_options}
    return Clients(
        resource=ResourceManagementClient(credential, sub, **kw),
        compute=ComputeManagementClient(credential, sub, **kw),
        keyvault=KeyVaultManagementClient(credential, sub, **kw),
        storage=StorageManagementClient(credential, sub, **kw),
        msi=ManagedServiceIdentityClient(credential, sub, **kw),
        authorization=AuthorizationManagementClient(credential, sub, **kw),
    )


def step(what: str, fn: Callable[[], T], *, hint: str) -> T:
    """Run one ARM call; turn the SDK's errors into an InfraError naming the step and the fix."""
    from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError

    try:
        return fn()
    except ClientAuthenticationError as exc:
        raise InfraError(
            f"Azure bootstrap: {what}: not authenticated ({first_line(exc)})",
            hint="run `az login` (or set AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, or use "
            "workload identity) for the blueprint's tenant",
        ) from None
    except HttpResponseError as exc:
        status = exc.status_code or 0
        if status == 403:
            hint = "the identity lacks the rights for this step: " + hint
        raise InfraError(
            f"Azure bootstrap: {what} failed (HTTP {status}): {first_line(exc)}", hint=hint
        ) from None
    except AzureError as exc:  # DNS, TLS, timeouts
        raise InfraError(
            f"Azure bootstrap: {what}: cannot reach Azure Resource Manager ({first_line(exc)})",
            hint="check the network path to management.azure.com (proxy, firewall) and retry",
        ) from None


def first_line(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)
    return str(text).strip().splitlines()[0] if str(text).strip() else type(exc).__name__


def sdk_field(obj: Any, *path: str) -> Any:
    """Read a field from an SDK model or a plain mapping (the SDK generations differ)."""
    for name in path:
        if obj is None:
            return None
        obj = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
    return obj


def arm_endpoint(base_url: str | None) -> str:
    """The ARM endpoint: the caller's, else $MLCTL_AZURE_ARM_ENDPOINT (tests), else Azure's."""
    return base_url or settings().azure_arm_endpoint or ARM_ENDPOINT
