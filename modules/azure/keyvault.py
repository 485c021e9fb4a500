"""Key Vault with one key per purpose: the Azure counterpart of ``modules/aws/kms.py``.

Premium SKU so every key is HSM-backed (RSA-HSM / EC-HSM); purge protection on (a deleted vault
or key cannot be purged before its retention ends, so ransomware cannot destroy the CMK); Azure
RBAC instead of access policies; public network access off (reachable through its private
endpoint only). Symmetric-purpose keys are RSA 3072 (the CMK wrapping keys for Storage, ACR,
disks and AKS KMS); the signing key is EC P-256, matching the AWS ECC_NIST_P256 signing key.
"""

from __future__ import annotations

from dataclasses import dataclass

from blueprints.schema import KeyPurpose
from modules.azure.common import LogSink, merged_tags
from modules.azure.posture import KEY_VAULT, KEY_VAULT_NETWORK_ACLS
from modules.azure.private_link import EndpointSpec, harden
from modules.cdk import Construct, azurerm

CMK_KEY_SIZE = 3072
_ROTATE_AFTER = "P365D"  # rotation policy: a new version yearly, expiring after two years
_EXPIRE_AFTER = "P730D"


@dataclass(frozen=True)
class KeyVaultSpec:
    name: str
    location: str
    resource_group: str
    tenant_id: str
    purposes: tuple[KeyPurpose, ...] = tuple(KeyPurpose)
    soft_delete_retention_days: int = 90
    endpoint: EndpointSpec | None = None  # private endpoint; without one the vault is unreachable
    # The identity running terraform needs data-plane rights to create keys; default: the caller.
    administrator_object_id: str | None = None


class KeyVault(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        spec: KeyVaultSpec,
        kms_key: str | None = None,  # the vault is where keys come from
        tags: dict[str, str] | None = None,
        logging: LogSink | None = None,
    ) -> None:
        super().__init__(scope, id_)
        kv = azurerm("key_vault")
        self.vault = kv.KeyVault(
            self,
            "vault",
            name=spec.name,
            location=spec.location,
            resource_group_name=spec.resource_group,
            tenant_id=spec.tenant_id,
            soft_delete_retention_days=min(max(spec.soft_delete_retention_days, 7), 90),
            **KEY_VAULT,
            network_acls=kv.KeyVaultNetworkAcls(**KEY_VAULT_NETWORK_ACLS),
            tags=merged_tags(tags),
        )
        self.id: str = self.vault.id
        harden(self, resource_id=self.vault.id, name=spec.name, location=spec.location,
               resource_group=spec.resource_group, subresource="vault", endpoint=spec.endpoint,
               logging=logging, tags=tags)
        admin_id = spec.administrator_object_id
        if admin_id is None:
            admin_id = azurerm("data_azurerm_client_config").DataAzurermClientConfig(self, "caller").object_id
        admin = azurerm("role_assignment").RoleAssignment(
            self,
            "terraform-crypto-officer",
            scope=self.vault.id,
            role_definition_name="Key Vault Crypto Officer",
            principal_id=admin_id,
            description="lets the identity that applies this stack create and rotate the keys",
        )
        kvk = azurerm("key_vault_key")
        self.keys: dict[KeyPurpose, Construct] = {}
        self.key_ids: dict[KeyPurpose, str] = {}  # versioned ids (AKS KMS needs the version)
        self.versionless_key_ids: dict[KeyPurpose, str] = {}  # CMK consumers follow rotations
        for purpose in spec.purposes:
            signing = purpose is KeyPurpose.signing
            key = kvk.KeyVaultKey(
                self,
                f"key-{purpose}",
                name=f"{purpose}-key",
                key_vault_id=self.vault.id,
                key_type="EC-HSM" if signing else "RSA-HSM",
                curve="P-256" if signing else None,
                key_size=None if signing else CMK_KEY_SIZE,
                key_opts=["sign", "verify"] if signing else ["wrapKey", "unwrapKey"],
                rotation_policy=kvk.KeyVaultKeyRotationPolicy(
                    expire_after=_EXPIRE_AFTER,
                    notify_before_expiry="P30D",
                    automatic=kvk.KeyVaultKeyRotationPolicyAutomatic(time_after_creation=_ROTATE_AFTER),
                ),
                tags=merged_tags(tags, Purpose=str(purpose)),
                depends_on=[admin],
            )
            self.keys[purpose] = key
            self.key_ids[purpose] = key.id
            self.versionless_key_ids[purpose] = key.versionless_id
