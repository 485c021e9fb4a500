"""The model-artifact storage account: the Azure counterpart of the S3 model bucket.

Private (public network access off, reachable through its blob private endpoint), Entra ID only
(shared keys and local users off, so no SAS or account key can leak), TLS 1.2, HTTPS only,
double encryption (infrastructure encryption + the artifacts CMK through a user-assigned
identity), blob versioning, change feed and soft delete. The audit-log container has its own
encryption scope with the logs key and a time-based immutability policy (WORM), the Azure
counterpart of S3 object lock. Geo-redundancy goes to the paired region, which for both UAE
regions is the other UAE region, so the copies stay in-country.
"""

from __future__ import annotations

from dataclasses import dataclass

from modules.azure.common import LogSink, diagnostics, is_zonal, merged_tags
from modules.azure.posture import STORAGE_ACCOUNT, STORAGE_SAS_POLICY
from modules.azure.private_link import EndpointSpec, harden
from modules.cdk import Construct, azurerm


@dataclass(frozen=True)
class StorageSpec:
    name: str
    location: str
    resource_group: str
    cmk_identity_id: str  # user-assigned identity allowed to wrap/unwrap with the CMK
    model_container: str = "model-artifacts"
    log_container: str | None = None
    logs_key_id: str | None = None  # encryption scope of the log container; default: the account CMK
    immutability_days: int = 30
    soft_delete_days: int = 30
    endpoint: EndpointSpec | None = None


class ArtifactStorage(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        spec: StorageSpec,
        kms_key: str | None = None,
        tags: dict[str, str] | None = None,
        logging: LogSink | None = None,
    ) -> None:
        super().__init__(scope, id_)
        sa = azurerm("storage_account")
        days = min(max(spec.soft_delete_days, 7), 365)
        self.account = sa.StorageAccount(
            self,
            "account",
            name=spec.name,
            location=spec.location,
            resource_group_name=spec.resource_group,
            # GZRS: zones in the region plus the paired UAE region (never outside the UAE).
            account_replication_type="GZRS" if is_zonal(spec.location) else "GRS",
            # Private, Entra ID only, TLS 1.2, double encryption (modules/azure/posture.py).
            **STORAGE_ACCOUNT,
            identity=sa.StorageAccountIdentity(type="UserAssigned", identity_ids=[spec.cmk_identity_id]),
            customer_managed_key=(
                sa.StorageAccountCustomerManagedKey(
                    key_vault_key_id=kms_key, user_assigned_identity_id=spec.cmk_identity_id
                )
                if kms_key
                else None
            ),
            network_rules=sa.StorageAccountNetworkRules(default_action="Deny", bypass=["AzureServices"]),
            sas_policy=sa.StorageAccountSasPolicy(**STORAGE_SAS_POLICY),
            blob_properties=sa.StorageAccountBlobProperties(
                versioning_enabled=True,
                change_feed_enabled=True,
                change_feed_retention_in_days=days,
                last_access_time_enabled=True,
                delete_retention_policy=sa.StorageAccountBlobPropertiesDeleteRetentionPolicy(days=days),
                container_delete_retention_policy=sa.StorageAccountBlobPropertiesContainerDeleteRetentionPolicy(
                    days=days
                ),
            ),
            tags=merged_tags(tags),
        )
        self.id: str = self.account.id
        self.name: str = self.account.name
        # Account-level metrics; blob reads/writes/deletes are logged on the blob service.
        harden(self, resource_id=self.account.id, name=spec.name, location=spec.location,
               resource_group=spec.resource_group, subresource="blob", endpoint=spec.endpoint,
               logging=logging, tags=tags, logs=False)
        diagnostics(
            self, "blob-diag", target_resource_id=f"{self.account.id}/blobServices/default", logging=logging
        )
        sc = azurerm("storage_container")
        self.model_container = sc.StorageContainer(
            self,
            "models",
            name=spec.model_container,
            storage_account_id=self.account.id,
            container_access_type="private",
        )
        self.log_container = None
        if spec.log_container:
            scope_name = None
            if spec.logs_key_id:
                enc = azurerm("storage_encryption_scope").StorageEncryptionScope(
                    self,
                    "logs-scope",
                    name="logs",
                    storage_account_id=self.account.id,
                    source="Microsoft.KeyVault",
                    key_vault_key_id=spec.logs_key_id,
                    infrastructure_encryption_required=True,
                )
                scope_name = enc.name
            self.log_container = sc.StorageContainer(
                self,
                "logs",
                name=spec.log_container,
                storage_account_id=self.account.id,
                container_access_type="private",
                default_encryption_scope=scope_name,
                encryption_scope_override_enabled=False if scope_name else None,
            )
            azurerm("storage_container_immutability_policy").StorageContainerImmutabilityPolicy(
                self,
                "logs-worm",
                storage_container_resource_manager_id=self.log_container.id,
                immutability_period_in_days=spec.immutability_days,
                # Appends allowed (log blobs grow), rewrites and deletes are not, until the period ends.
                protected_append_writes_enabled=True,
                # Left unlocked so the period can be extended; lock it once the retention is agreed.
                locked=False,
            )
