"""Pre-flight of an Azure environment (nothing is created when it fails): the resource providers
the stacks use are registered in the subscription, the region offers every service, and the
blueprint's VM sizes (system and GPU pools) are offered there without restriction for this
subscription."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from blueprints.schema import AzureSettings, Environment
from control_plane.errors import InfraError
from control_plane.infra.azure.arm import (
    Clients,
    arm_endpoint,
    azure_settings,
    default_credential,
    make_clients,
    sdk_field,
    step,
)

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


@dataclass(frozen=True)
class PreflightCheck:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def _normalize(location: str) -> str:
    """ARM answers "UAE North" in provider metadata and "uaenorth" elsewhere."""
    return location.replace(" ", "").lower()


def preflight(
    env: Environment,
    *,
    credential: Any | None = None,
    base_url: str | None = None,
    client_options: dict[str, Any] | None = None,
) -> list[PreflightCheck]:
    """Check the subscription can host the environment; returns every check (passed or not)."""
    az = azure_settings(env)
    clients = make_clients(
        az.subscription_id, credential or default_credential(), arm_endpoint(base_url), client_options or {}
    )
    return run_checks(env, az, clients)


def run_checks(env: Environment, az: AzureSettings, c: Clients) -> list[PreflightCheck]:
    """Every pre-flight check, in order: providers and their regions, then the pools' VM sizes."""
    return [*_provider_checks(env, az, c), *_vm_size_checks(env, c)]


def require_preflight(env: Environment, az: AzureSettings, c: Clients) -> list[PreflightCheck]:
    """Run the checks; raise naming every failed one (with their fixes) before anything is created."""
    checks = run_checks(env, az, c)
    failed = [ch for ch in checks if not ch.ok]
    if failed:
        lines = "\n    ".join(f"{ch.name}: {ch.detail}" for ch in failed)
        fixes = "; ".join(dict.fromkeys(ch.fix for ch in failed if ch.fix))
        raise InfraError(
            f"Azure pre-flight for {env.name} failed ({len(failed)} check(s)):\n    {lines}", hint=fixes
        )
    return checks


def _provider_checks(env: Environment, az: AzureSettings, c: Clients) -> list[PreflightCheck]:
    """Each required resource provider is registered, and offers its resource type in the region."""
    region = env.region
    checks: list[PreflightCheck] = []
    for namespace, rtype in REQUIRED_PROVIDERS.items():
        provider = step(
            f"reading resource provider {namespace}",
            lambda ns=namespace: c.resource.providers.get(ns),  # type: ignore[misc]
            hint="grant Reader on the subscription",
        )
        state = sdk_field(provider, "registration_state") or "Unknown"
        checks.append(
            PreflightCheck(
                name=f"provider {namespace}",
                ok=state == "Registered",
                detail=f"registration state {state}",
                fix=f"az provider register --namespace {namespace} --subscription {az.subscription_id}",
            )
        )
        locations = set()
        for rt in sdk_field(provider, "resource_types") or []:
            if sdk_field(rt, "resource_type") == rtype:
                locations = {_normalize(loc) for loc in sdk_field(rt, "locations") or []}
        checks.append(
            PreflightCheck(
                name=f"region {region}: {namespace}/{rtype}",
                ok=_normalize(region) in locations,
                detail="offered" if _normalize(region) in locations else f"not offered in {region}",
                fix=f"choose the other UAE region, or ask Microsoft for {namespace} access in {region}",
            )
        )
    return checks


def _offered_sizes(region: str, c: Clients) -> dict[str, list[str]]:
    """VM size -> the reasons it is restricted in the region for this subscription ([]: usable)."""
    skus = step(
        f"listing VM sizes in {region}",
        lambda: list(c.compute.resource_skus.list(filter=f"location eq '{region}'")),
        hint="grant Reader on the subscription",
    )
    offered: dict[str, list[str]] = {}
    for sku in skus:
        if sdk_field(sku, "resource_type") != "virtualMachines":
            continue
        reasons = [
            str(getattr(sdk_field(r, "reason_code"), "value", None) or sdk_field(r, "reason_code") or "restricted")
            for r in sdk_field(sku, "restrictions") or []
            if sdk_field(r, "type") == "Location"
        ]
        offered[str(sdk_field(sku, "name"))] = reasons
    return offered


def _vm_size_checks(env: Environment, c: Clients) -> list[PreflightCheck]:
    """The system pool's and every GPU pool's VM size is offered, unrestricted, in the region."""
    region = env.region
    offered = _offered_sizes(region, c)
    checks: list[PreflightCheck] = []
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
