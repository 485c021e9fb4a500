"""``bootstrap_azure`` against a local HTTPS server answering like ARM, through the real SDKs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError

from blueprints import load_environment
from control_plane.errors import InfraError
from control_plane.infra.azure import REQUIRED_PROVIDERS, bootstrap_azure, preflight
from tests.azure.fake_arm import TOKEN, ArmState, FakeArm

REPO = Path(__file__).resolve().parents[2]
ENV = load_environment(REPO / "blueprints/uae-prod-azure.yaml")
SIZES = [ENV.cluster.system_pool.instance_type, *(p.instance_type for p in ENV.cluster.gpu_pools)]


class StaticToken:
    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        return AccessToken(TOKEN, int(time.time()) + 3600)


class NoLogin:
    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token")


def healthy() -> ArmState:
    return ArmState(registered=set(REQUIRED_PROVIDERS), vm_sizes={size: [] for size in SIZES})


def run(tmp_path: Path, state: ArmState, env=ENV, credential=None):
    with FakeArm(tmp_path, state) as arm:
        return bootstrap_azure(
            env,
            credential=credential or StaticToken(),
            base_url=arm.url,
            client_options={"connection_verify": str(arm.cert), "retry_total": 0},
        )


def test_bootstrap_creates_a_private_cmk_encrypted_versioned_state_account(tmp_path):
    state = healthy()
    info = run(tmp_path, state)
    az = ENV.azure
    assert info.storage_account == az.state_storage_account and info.container == "tfstate"
    assert info.public_network_access == "Disabled"
    assert all(c.ok for c in info.checks)

    (rg,) = state.puts(rf"/resourcegroups/{az.state_resource_group}$")
    assert rg.body["location"] == "uaenorth"

    (vault,) = state.puts(rf"/vaults/{az.state_key_vault}$")
    vp = vault.body["properties"]
    assert vp["enablePurgeProtection"] is True and vp["enableRbacAuthorization"] is True
    assert vp["publicNetworkAccess"] == "Disabled" and vp["networkAcls"]["defaultAction"] == "Deny"
    (key,) = state.puts(r"/keys/tfstate-key$")
    assert key.body["properties"]["kty"] == "RSA-HSM" and key.body["properties"]["keySize"] >= 3072

    (grant,) = state.puts(r"/roleAssignments/")
    assert grant.path.lower().startswith(
        f"/subscriptions/{az.subscription_id}/resourcegroups/{az.state_resource_group}"
        f"/providers/microsoft.keyvault/vaults/{az.state_key_vault}".lower()
    )
    assert grant.body["properties"]["roleDefinitionId"].endswith("e147488a-f6f5-4113-8e2d-b22465e65bf6")
    assert grant.body["properties"]["principalId"] == "11111111-1111-1111-1111-111111111111"

    (acct,) = state.puts(rf"/storageAccounts/{az.state_storage_account}$")
    p = acct.body["properties"]
    assert acct.body["location"] == "uaenorth" and acct.body["sku"]["name"] == "Standard_GZRS"
    assert p["allowSharedKeyAccess"] is False and p["allowBlobPublicAccess"] is False
    assert p["publicNetworkAccess"] == "Disabled" and p["minimumTlsVersion"] == "TLS1_2"
    assert p["supportsHttpsTrafficOnly"] is True and p["networkAcls"]["defaultAction"] == "Deny"
    enc = p["encryption"]
    assert enc["keySource"] == "Microsoft.Keyvault" and enc["requireInfrastructureEncryption"] is True
    assert enc["keyvaultproperties"]["keyname"] == "tfstate-key"
    assert enc["identity"]["userAssignedIdentity"] == info.identity_id
    assert list(acct.body["identity"]["userAssignedIdentities"]) == [info.identity_id]

    (blob,) = state.puts(r"/blobServices/default$")
    assert blob.body["properties"]["isVersioningEnabled"] is True
    assert blob.body["properties"]["deleteRetentionPolicy"]["enabled"] is True
    (container,) = state.puts(r"/containers/tfstate$")
    assert container.body["properties"]["publicAccess"] == "None"


def test_bootstrap_is_idempotent(tmp_path):
    state = healthy()
    with FakeArm(tmp_path, state) as arm:
        opts = {"connection_verify": str(arm.cert), "retry_total": 0}
        first = bootstrap_azure(ENV, credential=StaticToken(), base_url=arm.url, client_options=opts)
        second = bootstrap_azure(ENV, credential=StaticToken(), base_url=arm.url, client_options=opts)
    assert first == second
    assert len(state.puts(r"/storageAccounts/[^/]+$")) == 2  # re-asserted, not skipped


def test_existing_grant_under_another_name_is_accepted(tmp_path):
    state = healthy()
    az = ENV.azure
    vault = (
        f"/subscriptions/{az.subscription_id}/resourceGroups/{az.state_resource_group}"
        f"/providers/Microsoft.KeyVault/vaults/{az.state_key_vault}"
    )
    state.resources[f"{vault}/providers/Microsoft.Authorization/roleAssignments/made-by-hand".lower()] = {
        "properties": {
            "principalId": "11111111-1111-1111-1111-111111111111",
            "scope": vault,
            "roleDefinitionId": f"/subscriptions/{az.subscription_id}/providers/Microsoft.Authorization/"
            "roleDefinitions/e147488a-f6f5-4113-8e2d-b22465e65bf6",
        }
    }
    info = run(tmp_path, state)
    assert info.storage_account == az.state_storage_account


def test_unregistered_provider_fails_preflight_and_creates_nothing(tmp_path):
    state = healthy()
    state.registered -= {"Microsoft.ContainerService", "Microsoft.KeyVault"}
    with pytest.raises(InfraError) as err:
        run(tmp_path, state)
    assert "provider Microsoft.ContainerService" in err.value.message
    assert "provider Microsoft.KeyVault" in err.value.message
    assert "az provider register --namespace Microsoft.ContainerService" in (err.value.hint or "")
    assert not [r for r in state.requests if r.method == "PUT"]


def test_missing_or_restricted_vm_sizes_fail_preflight(tmp_path):
    state = healthy()
    gpu = ENV.cluster.gpu_pools
    del state.vm_sizes[gpu[0].instance_type]
    state.vm_sizes[gpu[1].instance_type] = ["NotAvailableForSubscription"]
    with pytest.raises(InfraError) as err:
        run(tmp_path, state)
    msg = err.value.message
    assert f"VM size {gpu[0].instance_type} ({gpu[0].name}): not offered in uaenorth" in msg
    assert f"VM size {gpu[1].instance_type} ({gpu[1].name}): restricted" in msg
    assert "NotAvailableForSubscription" in msg


def test_region_not_offered_fails_preflight(tmp_path):
    state = healthy()
    state.locations["Microsoft.ContainerService"] = ["UAE Central"]
    with FakeArm(tmp_path, state) as arm:
        checks = preflight(
            ENV,
            credential=StaticToken(),
            base_url=arm.url,
            client_options={"connection_verify": str(arm.cert), "retry_total": 0},
        )
    bad = [c for c in checks if not c.ok]
    assert [c.name for c in bad] == ["region uaenorth: Microsoft.ContainerService/managedClusters"]


def test_not_logged_in_says_how_to_log_in(tmp_path):
    with pytest.raises(InfraError) as err:
        run(tmp_path, healthy(), credential=NoLogin())
    assert "not authenticated" in err.value.message
    assert "az login" in (err.value.hint or "")


def test_forbidden_step_is_named(tmp_path):
    state = healthy()
    state.fail[r"/storageAccounts/[^/]+$"] = 403
    with pytest.raises(InfraError) as err:
        run(tmp_path, state)
    assert (
        f"creating storage account {ENV.azure.state_storage_account} failed (HTTP 403)" in err.value.message
    )
    assert "lacks the rights" in (err.value.hint or "")


def test_operator_ranges_open_only_those_ranges(tmp_path):
    env = ENV.model_copy(
        update={
            "azure": ENV.azure.model_copy(
                update={"operator_ip_ranges": [__import__("ipaddress").IPv4Network("203.0.113.0/28")]}
            )
        }
    )
    state = healthy()
    info = run(tmp_path, state, env=env)
    assert info.public_network_access == "Enabled"
    (acct,) = state.puts(r"/storageAccounts/[^/]+$")
    acl = acct.body["properties"]["networkAcls"]
    assert acl["defaultAction"] == "Deny" and acl["ipRules"] == [
        {"value": "203.0.113.0/28", "action": "Allow"}
    ]


def test_aws_environment_is_refused():
    aws_env = load_environment(REPO / "blueprints/uae-prod-aws.yaml")
    with pytest.raises(InfraError) as err:
        bootstrap_azure(aws_env, credential=StaticToken(), base_url="https://127.0.0.1:9")
    assert "not an Azure environment" in err.value.message
