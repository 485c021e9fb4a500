"""A stack with the environment's azurerm provider and its remote state backend."""

from __future__ import annotations

from blueprints.schema import AzureSettings, Environment
from modules.cdk import AzurermBackend, Construct, TerraformStack, azurerm


def azure_settings(env: Environment) -> AzureSettings:
    if env.azure is None:  # the schema refuses this; kept for the type checker
        raise ValueError(f"environment '{env.name}' has no azure block")
    return env.azure


def state_key(env: Environment, layer: str) -> str:
    return f"{env.state.key_prefix}/{env.name}/{layer}.tfstate"


class AzureEnvironmentStack(TerraformStack):
    def __init__(self, scope: Construct, layer: str, env: Environment) -> None:
        super().__init__(scope, f"{env.name}-{layer}")
        self.env = env
        self.layer = layer
        az = azure_settings(env)
        prov = azurerm("provider")
        prov.AzurermProvider(
            self,
            "azurerm",
            subscription_id=az.subscription_id,
            tenant_id=az.tenant_id,
            # Data-plane calls (blob containers) with Entra ID: the accounts have shared keys off.
            storage_use_azuread=True,
            # `mlctl infra bootstrap` checks that the providers are registered; terraform must not
            # need subscription-wide rights to register them itself.
            resource_provider_registrations="none",
            features=[
                prov.AzurermProviderFeatures(
                    key_vault=[
                        prov.AzurermProviderFeaturesKeyVault(
                            # Never purge: a destroyed vault stays recoverable for its retention.
                            purge_soft_delete_on_destroy=False,
                            purge_soft_deleted_keys_on_destroy=False,
                            recover_soft_deleted_key_vaults=True,
                            recover_soft_deleted_keys=True,
                        )
                    ],
                    resource_group=[
                        prov.AzurermProviderFeaturesResourceGroup(prevent_deletion_if_contains_resources=True)
                    ],
                )
            ],
        )
        # State in the bootstrap's storage account (CMK, versioning, private); Entra ID auth only.
        AzurermBackend(
            self,
            resource_group_name=az.state_resource_group,
            storage_account_name=az.state_storage_account,
            container_name=env.state.bucket,
            key=state_key(env, layer),
            subscription_id=az.subscription_id,
            tenant_id=az.tenant_id,
            use_azuread_auth=True,
        )
