"""The Terraform state backend on Azure, created with the management SDKs before any stack exists.

Pre-flight first (``preflight.py``; nothing is created when it fails): the resource providers the
stacks use are registered in the subscription, the region offers every service, and the
blueprint's VM sizes (system and GPU pools) are offered there without restriction for this
subscription.

Then, in the state resource group: a user-assigned identity, a Key Vault (premium, RBAC, purge
protection, private) holding an RSA-HSM 3072 state key, the identity allowed to wrap with it, and
the state storage account: CMK through that identity, infrastructure encryption, TLS 1.2, no
shared keys (terraform's azurerm backend uses Entra ID: ``use_azuread_auth``), no public blobs,
public network access off (or, when the blueprint lists operator ranges, denied by default with
only those ranges allowed), blob versioning, soft delete and change feed. Each resource has its own
``ensure_*`` step, a PUT of the full desired state, so running it again re-asserts every setting.

Credentials: ``DefaultAzureCredential`` (``az login``, a service principal in ARM_*/AZURE_*
variables, workload identity federation, managed identity). ``MLCTL_AZURE_ARM_ENDPOINT`` points
the SDKs elsewhere (tests use a local HTTPS server answering like ARM).
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from blueprints.schema import AzureSettings, Environment
from control_plane.infra.azure.arm import (
    ARM_ENDPOINT,
    Clients,
    arm_endpoint,
    azure_settings,
    default_credential,
    make_clients,
    sdk_field,
    step,
)
from control_plane.infra.azure.preflight import (
    REQUIRED_PROVIDERS,
    PreflightCheck,
    preflight,
    require_preflight,
)

__all__ = [
    "ARM_ENDPOINT", "REQUIRED_PROVIDERS", "ROLE_CRYPTO_SERVICE_ENCRYPTION_USER", "SOFT_DELETE_DAYS", "STATE_KEY_NAME",
    "STATE_KEY_SIZE", "AzureBackendInfo", "PreflightCheck", "bootstrap_azure", "preflight",
]

# Built-in role definition ids (the same in every tenant).
ROLE_CRYPTO_SERVICE_ENCRYPTION_USER = "e147488a-f6f5-4113-8e2d-b22465e65bf6"

STATE_KEY_NAME = "tfstate-key"
STATE_KEY_SIZE = 3072
SOFT_DELETE_DAYS = 30


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


@dataclass(frozen=True)
class StateScope:
    """What every ``ensure_*`` step works in: the environment, its Azure settings, the clients and
    the tags every state resource carries."""

    env: Environment
    az: AzureSettings
    c: Clients
    tags: dict[str, str]

    @property
    def rg(self) -> str:
        return self.az.state_resource_group

    @property
    def region(self) -> str:
        return self.env.region

    @property
    def public(self) -> str:
        """Public network access of the vault and the account: only for listed operator ranges."""
        return "Enabled" if self.az.operator_ip_ranges else "Disabled"


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
    az = azure_settings(env)
    c = make_clients(az.subscription_id, credential or default_credential(), arm_endpoint(base_url),
                     client_options or {})
    checks = require_preflight(env, az, c)
    s = StateScope(env, az, c, env.tag_map() | {"Purpose": "terraform-state"})
    ensure_resource_group(s)
    identity_id, principal_id = ensure_identity(s)
    vault_id, vault_uri = ensure_key_vault(s)
    key_id = ensure_state_key(s, vault_uri)
    ensure_key_access(s, vault_id, principal_id)
    ensure_storage_account(s, identity_id, vault_uri)
    ensure_blob_protection(s)
    ensure_container(s)
    return AzureBackendInfo(
        environment=env.name,
        subscription_id=az.subscription_id,
        region=s.region,
        resource_group=s.rg,
        storage_account=az.state_storage_account,
        container=env.state.bucket,
        key_vault=az.state_key_vault,
        key_id=key_id,
        identity_id=identity_id,
        public_network_access=s.public,
        checks=checks,
    )


def ensure_resource_group(s: StateScope) -> None:
    step(
        f"creating resource group {s.rg}",
        lambda: s.c.resource.resource_groups.create_or_update(s.rg, {"location": s.region, "tags": s.tags}),
        hint="Contributor on the subscription (or an existing group and Contributor on it)",
    )


def ensure_identity(s: StateScope) -> tuple[str, str]:
    """The state identity (user-assigned): returns its resource id and principal id."""
    from azure.mgmt.msi.models import Identity

    ident = step(
        "creating the state identity",
        lambda: s.c.msi.user_assigned_identities.create_or_update(
            s.rg, f"id-{s.env.name}-tfstate", Identity(location=s.region, tags=s.tags)
        ),
        hint="Managed Identity Contributor on the resource group",
    )
    return str(sdk_field(ident, "id")), str(sdk_field(ident, "principal_id"))


def ensure_key_vault(s: StateScope) -> tuple[str, str]:
    """The premium, RBAC, purge-protected vault holding the state key: returns its id and URI."""
    az = s.az
    acl = {
        "bypass": "AzureServices",  # Storage reaches its CMK as a trusted service
        "defaultAction": "Deny",
        "ipRules": [{"value": str(r)} for r in az.operator_ip_ranges],
    }
    vault = step(
        f"creating key vault {az.state_key_vault}",
        lambda: s.c.keyvault.vaults.begin_create_or_update(
            s.rg,
            az.state_key_vault,
            {
                "location": s.region,
                "tags": s.tags,
                "properties": {
                    "tenantId": az.tenant_id,
                    "sku": {"family": "A", "name": "premium"},
                    "enableRbacAuthorization": True,
                    "enableSoftDelete": True,
                    "softDeleteRetentionInDays": SOFT_DELETE_DAYS,
                    "enablePurgeProtection": True,
                    "publicNetworkAccess": s.public,
                    "networkAcls": acl,
                },
            },
        ).result(),
        hint="Key Vault Contributor on the resource group; a soft-deleted vault of that name must be "
        "recovered (`az keyvault recover`) or the name changed",
    )
    vault_id = str(sdk_field(vault, "id"))
    vault_uri = str(
        sdk_field(vault, "properties", "vault_uri") or f"https://{az.state_key_vault}.vault.azure.net/"
    )
    return vault_id, vault_uri


def ensure_state_key(s: StateScope, vault_uri: str) -> str:
    """The RSA-HSM state key (wrap/unwrap only): returns its key id."""
    key = step(
        "creating the state key",
        lambda: s.c.keyvault.keys.create_if_not_exist(
            s.rg,
            s.az.state_key_vault,
            STATE_KEY_NAME,
            {
                "tags": s.tags,
                "properties": {
                    "kty": "RSA-HSM",
                    "keySize": STATE_KEY_SIZE,
                    "keyOps": ["wrapKey", "unwrapKey"],
                },
            },
        ),
        hint="Key Vault Contributor on the vault",
    )
    return str(sdk_field(key, "properties", "key_uri") or f"{vault_uri.rstrip('/')}/keys/{STATE_KEY_NAME}")


def ensure_key_access(s: StateScope, vault_id: str, principal_id: str) -> None:
    """The state identity may wrap and unwrap with the key (Key Vault Crypto Service Encryption User)."""
    from azure.mgmt.authorization.models import RoleAssignmentCreateParameters

    sub = s.az.subscription_id
    role_id = f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{ROLE_CRYPTO_SERVICE_ENCRYPTION_USER}"
    step(
        "letting the state identity use the key",
        lambda: _ensure_role(s.c, vault_id, role_id, principal_id, RoleAssignmentCreateParameters),
        hint="Owner or User Access Administrator on the state resource group",
    )


def ensure_storage_account(s: StateScope, identity_id: str, vault_uri: str) -> None:
    """The state account: CMK through the identity, infrastructure encryption, TLS 1.2, Entra ID only."""
    az, region = s.az, s.region
    step(
        f"creating storage account {az.state_storage_account}",
        lambda: s.c.storage.storage_accounts.begin_create(
            s.rg,
            az.state_storage_account,
            {
                "location": region,
                "tags": s.tags,
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
                    "publicNetworkAccess": s.public,
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


def ensure_blob_protection(s: StateScope) -> None:
    """Blob versioning, change feed, and soft delete of blobs and containers."""
    step(
        "enabling versioning and soft delete",
        lambda: s.c.storage.blob_services.set_service_properties(
            s.rg,
            s.az.state_storage_account,
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


def ensure_container(s: StateScope) -> None:
    """The private state container."""
    step(
        f"creating container {s.env.state.bucket}",
        lambda: s.c.storage.blob_containers.create(
            s.rg, s.az.state_storage_account, s.env.state.bucket, {"properties": {"publicAccess": "None"}}
        ),
        hint="Storage Account Contributor on the account",
    )


def _assignment_name(scope: str, role: str, principal: str) -> str:
    # Role assignment names are GUIDs; deriving it makes a re-run PUT the same assignment.
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{scope}|{role}|{principal}"))


def _ensure_role(c: Clients, scope: str, role_id: str, principal_id: str, params_cls: Any) -> None:
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
