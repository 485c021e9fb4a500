"""Parity between the two renderers of one blueprint: the CDKTF synth (``cdk.tf.json`` per stack)
and the Pulumi program (under mocks, as Terraform-shaped documents, see inventory.py).

Both sides become an inventory ``{(terraform type, construct path): attributes}``; attributes are
normalised so that only meaning is compared:

- references become ``<ref:construct path>`` (CDKTF: ``${aws_kms_key.kms_logs-key_75E72263.arn}`` or a
  cross-stack ``terraform_remote_state`` output; Pulumi: the mocks' ``${aws_kms_key.<env>/kms/logs-key.arn}``);
- JSON policy documents are parsed and compared as data; a one-block list is its block;
  ``"true"``/``"false"`` are booleans and ``30.0`` is ``30`` (Pulumi's wire numbers are floats).

Every resource and every attribute is compared, so anything security-relevant (encryption, key
rotation, public access, endpoint privacy, IMDSv2, log retention, taints, regions, policies) that
is missing or different on either side is a ``Difference`` naming the resource and the setting.
The differences we accept are listed in ``ACCEPTED`` with their reasons (docs/pulumi.md).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

Key = tuple[str, str]  # (terraform type, construct path)
Inventory = dict[Key, dict[str, Any]]

PROVIDER = "provider.aws"
AZURE_PROVIDER = "provider.azurerm"
_META = {"//", "depends_on", "lifecycle", "provider", "count", "for_each"}
_REF = re.compile(r"\$\{([^}]*)\}")
_UNIQUE_ID = re.compile(r"_[0-9A-F]{8}$")

# (terraform type, setting) -> why the two renderers may differ there. Settings are dotted paths.
ACCEPTED: dict[tuple[str, str], str] = {
    (PROVIDER, "skip_region_validation"): "pulumi-aws sends its provider defaults explicitly (false/true as "
    "strings); the CDKTF provider block leaves them unset. Neither changes where resources go: region is "
    "compared, and the residency guardrail runs on both.",
    (PROVIDER, "skip_credentials_validation"): "a pulumi-aws provider default (false), sent explicitly",
    (AZURE_PROVIDER, "skip_provider_registration"): "a pulumi-azure provider default (false), sent explicitly; "
    "both sides set resource_provider_registrations='none', which is compared",
    (AZURE_PROVIDER, "environment"): "a pulumi-azure provider default ('public', the Azure public cloud, which "
    "is also azurerm's default); where resources go is their location, which is compared",
}


@dataclass(frozen=True)
class Difference:
    resource: str  # "<type> <construct path>"
    setting: str  # dotted attribute path, or "(resource)" when one side lacks the resource
    cdktf: Any
    pulumi: Any

    def __str__(self) -> str:
        return f"{self.resource}: {self.setting}: cdktf={self.cdktf!r} pulumi={self.pulumi!r}"


def _settings(config: dict[str, Any]) -> dict[str, Any]:
    """A resource's own attributes, without Terraform meta-arguments (ordering is the engine's job:
    CDKTF has depends_on, Pulumi has resource options)."""
    return {k: v for k, v in config.items() if k not in _META}


def _normalise(value: Any, resolve: dict[str, str], strip: str) -> Any:
    if isinstance(value, dict):
        return {k: _normalise(v, resolve, strip) for k, v in value.items()}
    if isinstance(value, list):
        items = [_normalise(v, resolve, strip) for v in value]
        return items[0] if len(items) == 1 and isinstance(items[0], dict) else items
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        if value in ("true", "false"):
            return value == "true"
        text = _REF.sub(lambda m: _canonical_ref(m.group(0), m.group(1), resolve, strip), value)
        if text[:1] in "{[":
            try:
                return _normalise(json.loads(text), resolve, strip)
            except ValueError:
                pass
        return text
    return value


def _canonical_ref(whole: str, expr: str, resolve: dict[str, str], strip: str) -> str:
    if expr.startswith("data.aws_caller_identity."):
        return "<account>"  # CDKTF: a data source per construct; Pulumi: one getCallerIdentity invoke
    if expr.startswith("data.azurerm_client_config."):  # the same, for the applying identity on Azure
        return f"<client_config.{expr.rsplit('.', 1)[1]}>"
    for unique_id, path in resolve.items():  # CDKTF: local or cross-stack, by the target's unique id
        if unique_id in expr:
            return f"<ref:{path}>"
    parts = expr.split(".", 1)  # Pulumi mocks: ${<type>.<env>/<path>.<attr>}
    if len(parts) == 2 and parts[1].startswith(strip):
        return f"<ref:{parts[1][len(strip):].rsplit('.', 1)[0].split('.')[0]}>"
    return whole


def cdktf_inventory(stacks: list[dict[str, Any]]) -> Inventory:
    """The inventory of one environment's synthesized stacks (parsed cdk.tf.json documents)."""
    resolve: dict[str, str] = {}
    for doc in stacks:
        for named in doc.get("resource", {}).values():
            for name, cfg in named.items():
                path = cfg.get("//", {}).get("metadata", {}).get("path", name)
                resolve[name] = path.split("/", 1)[1]
    # Longest ids first: kms_logs-key_75E72263 must not be found inside a longer id.
    resolve = dict(sorted(resolve.items(), key=lambda kv: -len(kv[0])))
    inv: Inventory = {}
    for doc in stacks:
        for name, blocks in doc.get("provider", {}).items():
            for provider in blocks:
                inv[(f"provider.{name}", name)] = _normalise(provider, resolve, "")
        for rtype, named in doc.get("resource", {}).items():
            for name, cfg in named.items():
                inv[(rtype, resolve[name])] = _normalise(_settings(cfg), resolve, "")
    return inv


def pulumi_inventory(doc: dict[str, Any], env: str) -> Inventory:
    """The inventory of one environment's Pulumi document (inventory.terraform_documents)."""
    strip = f"{env}/"
    inv: Inventory = {}
    for name, blocks in doc.get("provider", {}).items():
        for provider in blocks:
            inv[(f"provider.{name}", name)] = _normalise(provider, {}, strip)
    for rtype, named in doc.get("resource", {}).items():
        for name, cfg in named.items():
            inv[(rtype, name.removeprefix(strip))] = _normalise(_settings(cfg), {}, strip)
    return inv


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else k))
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        out = {}
        for i, v in enumerate(value):
            out.update(_flatten(v, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def compare(cdktf: Inventory, pulumi: Inventory) -> list[Difference]:
    """Every resource or setting that one side has and the other lacks or sets differently."""
    diffs: list[Difference] = []
    for key in sorted(set(cdktf) | set(pulumi)):
        rtype, path = key
        resource = f"{rtype} {path}"
        if key not in pulumi or key not in cdktf:
            diffs.append(Difference(resource, "(resource)", "present" if key in cdktf else "missing",
                                    "present" if key in pulumi else "missing"))
            continue
        a, b = _flatten(cdktf[key]), _flatten(pulumi[key])
        for setting in sorted(set(a) | set(b)):
            if (rtype, setting) in ACCEPTED:
                continue
            va, vb = a.get(setting, "<unset>"), b.get(setting, "<unset>")
            if va != vb:
                diffs.append(Difference(resource, setting, va, vb))
    return diffs
