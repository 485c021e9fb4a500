"""The Terraform state backend on Azure, created with the management SDKs before any stack exists.

Pre-flight first (nothing is created when it fails): the resource providers the stacks use are
registered in the subscription, the region offers every service, and the blueprint's VM sizes
(system and GPU pools) are offered there without restriction for this subscription.

Then, in the state resource group: a user-assigned identity, a Key Vault (premium, RBAC, purge
protection, private) holding an RSA-HSM 3072 state key, the identity allowed to wrap with it, and
the state storage account: CMK through that identity, infrastructure encryption, TLS 1.2, no
shared keys (terraform's azurerm backend uses Entra ID: ``use_azuread_auth``), no public blobs,
public network access off (or, when the blueprint lists operator ranges, denied by default with
only those ranges allowed), blob versioning, soft delete and change feed. Every step is a PUT of
the full desired state, so running it again re-asserts every setting.

Credentials: ``DefaultAzureCredential`` (``az login``, a service principal in ARM_*/AZURE_*
variables, workload identity federation, managed identity). ``MLCTL_AZURE_ARM_ENDPOINT`` points
the SDKs elsewhere (tests use a local HTTPS server answering like ARM).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from blueprints.schema import AzureSettings, Environment
from control_plane.errors import InfraError
from control_plane.settings import current as settings

ARM_ENDPOINT = "https://management.azure.com"

# namespace -> the resource type whose locations prove the region offers the service
REQUIRED_PROVIDERS: dict[str, str] = {
    "Microsoft.ContainerService": "managedClusters",
    "Microsoft.KeyVault": "vaults",
    "Microsoft.Storage": "storageAccounts",
    "Microsoft.ContainerRegistry": "registries",
    "Microsoft.Network": "virtualNetworks",
    "Microsoft.OperationalInsights": "workspaces",
    "Microsoft.Compute": "diskEncryptionSets",
    "Microsoft.ManagedIdentity": "userAssignedIdentities",
}

# Built-in role definition ids (the same in every tenant).
ROLE_CRYPTO_SERVICE_ENCRYPTION_USER = "e147488a-f6f5-4113-8e2d-b22465e65bf6"

STATE_KEY_NAME = "tfstate-key"
STATE_KEY_SIZE = 3072
SOFT_DELETE_DAYS = 30

T = TypeVar("T")


@dataclass(frozen=True)
class PreflightCheck:
    name: str
    ok: bool
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class AzureBackendInfo:
    environment: str
    subscription_id: str
    region: str
    resource_group: str
    storage_account: str
    container: str
    key_vault: str
    key_id: str
    identity_id: str
    public_network_access: str
    checks: list[PreflightCheck] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Clients:
    resource: Any
    compute: Any
    keyvault: Any
    storage: Any
    msi: Any
    authorization: Any


def _normalize(location: str) -> str:
    """ARM answers "UAE North" in provider metadata and "uaenorth" elsewhere."""
    return location.replace(" ", "").lower()


def _settings(env: Environment) -> AzureSettings:
    if env.azure is None:
        raise InfraError(
            f"environment '{env.name}' is not an Azure environment (cloud: {env.cloud})",
            hint="bootstrap_azure takes an environment with cloud: azure and an azure block",
        )
    return env.azure


def _default_credential() -> Any:
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def _clients(sub: str, credential: Any, base_url: str, client_options: dict[str, Any]) -> _Clients:
    from azure.mgmt.authorization import AuthorizationManagementClient
    from azure.mgmt.compute import ComputeManagementClient
    from azure.mgmt.keyvault import KeyVaultManagementClient
    from azure.mgmt.msi import ManagedServiceIdentityClient
    from azure.mgmt.resource.resources import ResourceManagementClient
    from azure.mgmt.storage import StorageManagementClient

    kw = {"base_url": base_url, **client_options}
    return _Clients(
        resource=ResourceManagementClient(credential, sub, **kw),
        compute=ComputeManagementClient(credential, sub, **kw),
        keyvault=KeyVaultManagementClient(credential, sub, **kw),
        storage=StorageManagementClient(credential, sub, **kw),
        msi=ManagedServiceIdentityClient(credential, sub, **kw),
        authorization=AuthorizationManagementClient(credential, sub, **kw),
    )


def _step(what: str, fn: Callable[[], T], *, hint: str) -> T:
    """Run one ARM call; turn the SDK's errors into an InfraError naming the step and the fix."""
    from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError

    try:
        return fn()
    except ClientAuthenticationError as exc:
        raise InfraError(
            f"Azure bootstrap: {what}: not authenticated ({_first_line(exc)})",
            hint="run `az login` (or set AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, or use "
            "workload identity) for the blueprint's tenant",
        ) from None
    except HttpResponseError as exc:
        status = exc.status_code or 0
        if status == 403:
            hint = "the identity lacks the rights for this step: " + hint
        raise InfraError(
            f"Azure bootstrap: {what} failed (HTTP {status}): {_first_line(exc)}", hint=hint
        ) from None
    except AzureError as exc:  # DNS, TLS, timeouts
        raise InfraError(
            f"Azure bootstrap: {what}: cannot reach Azure Resource Manager ({_first_line(exc)})",
            hint="check the network path to management.azure.com (proxy, firewall) and retry",
        ) from None


def _first_line(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)
    return str(text).strip().splitlines()[0] if str(text).strip() else type(exc).__name__


def _value(obj: Any, *path: str) -> Any:
    """Read a field from an SDK model or a plain mapping (the SDK generations differ)."""
    for name in path:
        if obj is None:
            return None
        obj = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
    return obj


def preflight(
    env: Environment,
    *,
    credential: Any | None = None,
    base_url: str | None = None,
    client_options: dict[str, Any] | None = None,
) -> list[PreflightCheck]:
    """Check the subscription can host the environment; returns every check (passed or not)."""
    az = _settings(env)
    clients = _clients(
        az.subscription_id, credential or _default_credential(), _base_url(base_url), client_options or {}
    )
    return _preflight(env, az, clients)


def _preflight(env: Environment, az: AzureSettings, c: _Clients) -> list[PreflightCheck]:
    region = env.region
    checks: list[PreflightCheck] = []
    for namespace, rtype in REQUIRED_PROVIDERS.items():
        provider = _step(
            f"reading resource provider {namespace}",
            lambda ns=namespace: c.resource.providers.get(ns),  # type: ignore[misc]
            hint="grant Reader on the subscription",
        )
        state = _value(provider, "registration_state") or "Unknown"
        checks.append(
            PreflightCheck(
                name=f"provider {namespace}",
                ok=state == "Registered",
                detail=f"registration state {state}",
                fix=f"az provider register --namespace {namespace} --subscription {az.subscription_id}",
            )
        )
        locations = set()
        for rt in _value(provider, "resource_types") or []:
            if _value(rt, "resource_type") == rtype:
                locations = {_normalize(loc) for loc in _value(rt, "locations") or []}
        checks.append(
            PreflightCheck(
                name=f"region {region}: {namespace}/{rtype}",
                ok=_normalize(region) in locations,
                detail="offered" if _normalize(region) in locations else f"not offered in {region}",
                fix=f"choose the other UAE region, or ask Microsoft for {namespace} access in {region}",
            )
        )
    skus = _step(
        f"listing VM sizes in {region}",
        lambda: list(c.compute.resource_skus.list(filter=f"location eq '{region}'")),
        hint="grant Reader on the subscription",
    )
    offered: dict[str, list[str]] = {}
    for sku in skus:
        if _value(sku, "resource_type") != "virtualMachines":
            continue
        reasons = [
            str(getattr(_value(r, "reason_code"), "value", None) or _value(r, "reason_code") or "restricted")
            for r in _value(sku, "restrictions") or []
            if _value(r, "type") == "Location"
        ]
        offered[str(_value(sku, "name"))] = reasons
    pools = [env.cluster.system_pool, *env.cluster.gpu_pools]
    for pool in pools:
        size = pool.instance_type
        if size not in offered:
            checks.append(
                PreflightCheck(
                    f"VM size {size} ({pool.name})",
                    False,
                    f"not offered in {region}",
                    fix="pick a size `az vm list-skus --location "
                    f"{region} --resource-type virtualMachines` lists",
                )
            )
        elif offered[size]:
            checks.append(
                PreflightCheck(
                    f"VM size {size} ({pool.name})",
                    False,
                    f"restricted for this subscription ({', '.join(offered[size])})",
                    fix="request access/quota for the size in the Azure portal (Quotas)",
                )
            )
        else:
            checks.append(PreflightCheck(f"VM size {size} ({pool.name})", True, f"offered in {region}"))
    return checks


def _base_url(base_url: str | None) -> str:
    return base_url or settings().azure_arm_endpoint or ARM_ENDPOINT


def _assignment_name(scope: str, role: str, principal: str) -> str:
    # Role assignment names are GUIDs; deriving it makes a re-run PUT the same assignment.
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{scope}|{role}|{principal}"))


def bootstrap_azure(
    env: Environment,
    *,
    credential: Any | None = None,
    base_url: str | None = None,
    client_options: dict[str, Any] | None = None,
) -> AzureBackendInfo:
    """Pre-flight, then create (or re-assert) the state backend of one Azure environment.

    ``credential`` defaults to ``DefaultAzureCredential``; ``base_url`` to ``$MLCTL_AZURE_ARM_ENDPOINT``
    or ARM itself; ``client_options`` go to every management client (e.g. ``connection_verify``).
    Raises ``InfraError`` naming the failed pre-flight checks or the failed step, with the fix.
    """
    az = _settings(env)
    sub, region, rg = az.subscription_id, env.region, az.state_resource_group
    c = _clients(sub, credential or _default_credential(), _base_url(base_url), client_options or {})
    checks = _preflight(env, az, c)
    failed = [ch for ch in checks if not ch.ok]
    if failed:
        lines = "\n    ".join(f"{ch.name}: {ch.detail}" for ch in failed)
        fixes = "; ".join(dict.fromkeys(ch.fix for ch in failed if ch.fix))
        raise InfraError(
            f"Azure pre-flight for {env.name} failed ({len(failed)} check(s)):\n    {lines}", hint=fixes
        )

    tags = env.tag_map() | {"Purpose": "terraform-state"}
    _step(
        f"creating resource group {rg}",
        lambda: c.resource.resource_groups.create_or_update(rg, {"location": region, "tags": tags}),
        hint="Contributor on the subscription (or an existing group and Contributor on it)",
    )

    from azure.mgmt.msi.models import Identity

    ident = _step(
        "creating the state identity",
        lambda: c.msi.user_assigned_identities.create_or_update(
            rg, f"id-{env.name}-tfstate", Identity(location=region, tags=tags)
        ),
        hint="Managed Identity Contributor on the resource group",
    )
    identity_id, principal_id = str(_value(ident, "id")), str(_value(ident, "principal_id"))

    public = "Enabled" if az.operator_ip_ranges else "Disabled"
    acl = {
        "bypass": "AzureServices",  # Storage reaches its CMK as a trusted service
        "defaultAction": "Deny",
        "ipRules": [{"value": str(r)} for r in az.operator_ip_ranges],
    }
    vault = _step(
        f"creating key vault {az.state_key_vault}",
        lambda: c.keyvault.vaults.begin_create_or_update(
            rg,
            az.state_key_vault,
            {
                "location": region,
                "tags": tags,
                "properties": {
                    "tenantId": az.tenant_id,
                    "sku": {"family": "A", "name": "premium"},
                    "enableRbacAuthorization": True,
                    "enableSoftDelete": True,
                    "softDeleteRetentionInDays": SOFT_DELETE_DAYS,
                    "enablePurgeProtection": True,
                    "publicNetworkAccess": public,
                    "networkAcls": acl,
                },
            },
        ).result(),
        hint="Key Vault Contributor on the resource group; a soft-deleted vault of that name must be "
        "recovered (`az keyvault recover`) or the name changed",
    )
    vault_id = str(_value(vault, "id"))
    vault_uri = str(
        _value(vault, "properties", "vault_uri") or f"https://{az.state_key_vault}.vault.azure.net/"
    )
    key = _step(
        "creating the state key",
        lambda: c.keyvault.keys.create_if_not_exist(
            rg,
            az.state_key_vault,
            STATE_KEY_NAME,
            {
                "tags": tags,
                "properties": {
                    "kty": "RSA-HSM",
                    "keySize": STATE_KEY_SIZE,
                    "keyOps": ["wrapKey", "unwrapKey"],
                },
            },
        ),
        hint="Key Vault Contributor on the vault",
    )
    key_id = str(_value(key, "properties", "key_uri") or f"{vault_uri.rstrip('/')}/keys/{STATE_KEY_NAME}")

    from azure.mgmt.authorization.models import RoleAssignmentCreateParameters

    role_id = f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{ROLE_CRYPTO_SERVICE_ENCRYPTION_USER}"
    _step(
        "letting the state identity use the key",
        lambda: _ensure_role(c, vault_id, role_id, principal_id, RoleAssignmentCreateParameters),
        hint="Owner or User Access Administrator on the state resource group",
    )

    account = az.state_storage_account
    _step(
        f"creating storage account {account}",
        lambda: c.storage.storage_accounts.begin_create(
            rg,
            account,
            {
                "location": region,
                "tags": tags,
                "kind": "StorageV2",
                # The paired region of both UAE regions is the other UAE region: copies stay in-country.
                "sku": {"name": "Standard_GZRS" if region == "uaenorth" else "Standard_GRS"},
                "identity": {"type": "UserAssigned", "userAssignedIdentities": {identity_id: {}}},
                "properties": {
                    "minimumTlsVersion": "TLS1_2",
                    "supportsHttpsTrafficOnly": True,
                    "allowBlobPublicAccess": False,
                    "allowSharedKeyAccess": False,
                    "defaultToOAuthAuthentication": True,
                    "allowCrossTenantReplication": False,
                    "publicNetworkAccess": public,
                    "networkAcls": {
                        "bypass": "AzureServices",
                        "defaultAction": "Deny",
                        "ipRules": [{"value": str(r), "action": "Allow"} for r in az.operator_ip_ranges],
                    },
                    "encryption": {
                        "keySource": "Microsoft.Keyvault",
                        "requireInfrastructureEncryption": True,
                        "keyvaultproperties": {"keyname": STATE_KEY_NAME, "keyvaulturi": vault_uri},
                        "identity": {"userAssignedIdentity": identity_id},
                        "services": {"blob": {"enabled": True, "keyType": "Account"}},
                    },
                },
            },
        ).result(),
        hint="Storage Account Contributor on the resource group; storage account names are global, "
        "so a name taken by someone else needs a new azure.state_storage_account. If the key was just "
        "granted, role propagation can take a minute: run bootstrap again",
    )
    _step(
        "enabling versioning and soft delete",
        lambda: c.storage.blob_services.set_service_properties(
            rg,
            account,
            {
                "properties": {
                    "isVersioningEnabled": True,
                    "changeFeed": {"enabled": True},
                    "deleteRetentionPolicy": {"enabled": True, "days": SOFT_DELETE_DAYS},
                    "containerDeleteRetentionPolicy": {"enabled": True, "days": SOFT_DELETE_DAYS},
                }
            },
        ),
        hint="Storage Account Contributor on the account",
    )
    _step(
        f"creating container {env.state.bucket}",
        lambda: c.storage.blob_containers.create(
            rg, account, env.state.bucket, {"properties": {"publicAccess": "None"}}
        ),
        hint="Storage Account Contributor on the account",
    )
    return AzureBackendInfo(
        environment=env.name,
        subscription_id=sub,
        region=region,
        resource_group=rg,
        storage_account=account,
        container=env.state.bucket,
        key_vault=az.state_key_vault,
        key_id=key_id,
        identity_id=identity_id,
        public_network_access=public,
        checks=checks,
    )


def _ensure_role(c: _Clients, scope: str, role_id: str, principal_id: str, params_cls: Any) -> None:
    from azure.core.exceptions import ResourceExistsError

    # RoleAssignmentExists (409): the grant is already there (made by hand or by a re-run).
    with contextlib.suppress(ResourceExistsError):
        c.authorization.role_assignments.create(
            scope,
            _assignment_name(scope, role_id, principal_id),
            params_cls(
                role_definition_id=role_id, principal_id=principal_id, principal_type="ServicePrincipal"
            ),
        )
