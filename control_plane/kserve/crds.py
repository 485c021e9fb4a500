"""Validate rendered objects against the real CustomResourceDefinitions before they reach a cluster.

The CRDs are KServe's and the Gateway API's own files (not copied into this project): the folder
named by ``$KSERVE_CRDS_DIR``, else ``<repo>/../shared/crds``. We validate like
``kubectl apply --validate=strict``: the served version's ``openAPIV3Schema``, and unknown fields are
errors wherever the schema does not say ``x-kubernetes-preserve-unknown-fields`` (a misspelt
``storageURI`` must fail here, not be pruned silently by the API server).
"""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path
from typing import Any, Final

import yaml
from jsonschema import Draft7Validator

from control_plane.errors import MlctlError, ToolMissing
from control_plane.settings import PROJECT_ROOT
from control_plane.settings import current as settings

ENV_VAR: Final = "KSERVE_CRDS_DIR"
# apiVersion group -> CRD file, as the KServe project ships them
CRD_FILES: Final[dict[tuple[str, str], str]] = {
    ("serving.kserve.io", "InferenceService"): "serving.kserve.io_inferenceservices.yaml",
    ("gateway.networking.k8s.io", "HTTPRoute"): "gateway.networking.k8s.io_httproutes.yaml",
}
_MAX_REPORTED = 8
_LABEL_KEY_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class CrdsMissing(ToolMissing):
    """The CRD folder or file is not there."""


def crds_dir() -> Path:
    return settings().kserve_crds_dir or PROJECT_ROOT.parent / "shared" / "crds"


def _crd_path(group: str, kind: str) -> Path:
    filename = CRD_FILES.get((group, kind))
    if filename is None:
        raise MlctlError(
            f"no CRD is known for {kind} in {group}",
            hint=f"validate one of: {', '.join(k for _, k in CRD_FILES)}",
        )
    path = crds_dir() / filename
    if not path.is_file():
        raise CrdsMissing(
            f"CRD file {path} is missing",
            hint=f"set {ENV_VAR} to a folder holding {filename} (from the KServe / Gateway API release)",
        )
    return path


def _strict(schema: Any) -> Any:
    """Make unknown fields errors, as the API server's strict field validation does."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@functools.lru_cache(maxsize=8)
def _validator(path: Path, version: str) -> Draft7Validator:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the KServe CRD is 2 MB
    with path.open(encoding="utf-8") as fh:
        crd = yaml.load(fh, Loader=loader)  # noqa: S506 - a safe loader
    for entry in crd["spec"]["versions"]:
        if entry["name"] == version:
            if not entry.get("served", False):
                raise MlctlError(
                    f"{crd['metadata']['name']} version {version} is not served",
                    hint="render the served version (see the CRD's spec.versions)",
                )
            schema = copy.deepcopy(entry["schema"]["openAPIV3Schema"])
            return Draft7Validator(_strict(schema))
    served = [v["name"] for v in crd["spec"]["versions"] if v.get("served")]
    raise MlctlError(
        f"{crd['metadata']['name']} has no version {version}",
        hint=f"use apiVersion with one of the served versions: {', '.join(served)}",
    )


def _where(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _metadata_errors(obj: dict[str, Any]) -> list[str]:
    """ObjectMeta is opaque in a CRD schema; check what the API server would refuse."""
    errors: list[str] = []
    meta = obj.get("metadata") or {}
    name = meta.get("name")
    if not isinstance(name, str) or len(name) > 253 or not _NAME.match(name):
        errors.append(f"metadata.name: {name!r} is not a DNS subdomain name")
    for field in ("labels", "annotations"):
        for key, value in (meta.get(field) or {}).items():
            prefix, _, short = key.rpartition("/")
            if (
                not _LABEL_KEY_NAME.match(short)
                or len(short) > 63
                or (prefix and not _LABEL_PREFIX.match(prefix))
            ):
                errors.append(f"metadata.{field}: key {key!r} is not a qualified name")
            if not isinstance(value, str):
                errors.append(f"metadata.{field}.{key}: value must be a string, got {type(value).__name__}")
            elif field == "labels" and (len(value) > 63 or not _LABEL_VALUE.match(value)):
                errors.append(f"metadata.labels.{key}: {value!r} is not a valid label value")
    return errors


def validation_errors(obj: dict[str, Any]) -> list[str]:
    """Every problem with ``obj`` against its CRD, as ``field.path: message`` lines (empty if valid)."""
    api_version = str(obj.get("apiVersion", ""))
    group, _, version = api_version.rpartition("/")
    path = _crd_path(group, str(obj.get("kind", "")))
    validator = _validator(path, version)
    errors = [
        f"{_where(err.absolute_path)}: {err.message}"
        for err in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
    ]
    return errors + _metadata_errors(obj)


def validate(obj: dict[str, Any]) -> dict[str, Any]:
    """Return ``obj`` if it validates against its CRD; raise an ``MlctlError`` naming each bad field."""
    errors = validation_errors(obj)
    if errors:
        shown = "; ".join(errors[:_MAX_REPORTED])
        more = f" (and {len(errors) - _MAX_REPORTED} more)" if len(errors) > _MAX_REPORTED else ""
        name = (obj.get("metadata") or {}).get("name", "?")
        raise MlctlError(
            f"{obj.get('kind')} {name} does not match its CRD schema: {shown}{more}",
            hint="fix the listed fields; the schema is the CRD in " + str(crds_dir()),
        )
    return obj
