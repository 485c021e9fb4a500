"""Retrain triggers: tell the training side when what a production model was trained from moves on.

``check_retrain_triggers(new_version)`` runs right after the registry registers a model version:
the registry emits ``model.registered`` and ``on_model_registered`` (subscribed by ``subscribe()``,
which the composition roots call) reads the version back and checks it. The registry does not
depend on monitoring or on the release engine's tables; this module does. It looks at every model version that is in production somewhere and pins the same data
set or feature set as ``new_version`` does, and emits ``retrain.required`` for each one whose pin
is now older (a different version or digest of the same data set / feature set), or whose pinned
schema differs from the schema just registered.

Pins are read from registry objects by duck typing (``dataset``: ``"URI@DIGEST"``, ``features``:
``"NAME@VER"`` or a list of them, ``schema``: the inferred data schema) or from the registry's
``lineage``, so this module does not depend on the registry's row classes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from control_plane import registry
from control_plane.events import emit
from control_plane.monitor.production import production_versions


@dataclass(frozen=True)
class Pin:
    """A data set or feature set reference split into identity and version (``base@version``)."""

    kind: str  # "dataset" | "features"
    base: str
    version: str

    @classmethod
    def parse(cls, kind: str, ref: str) -> Pin:
        base, sep, version = str(ref).rpartition("@")
        return cls(kind, base, version) if sep else cls(kind, str(ref), "")

    def ref(self) -> str:
        return f"{self.base}@{self.version}" if self.version else self.base


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _lineage(version: Any) -> dict[str, Any]:
    lineage = _get(version, "lineage")
    return lineage if isinstance(lineage, dict) else {}


def pins_of(version: Any) -> list[Pin]:
    """The data set and feature-set pins of a registered model version.

    Reads the registry's lineage (``lineage.datasets[].ref`` = ``URI@algo:digest``,
    ``lineage.features[]`` = ``{name, version}``), or plain ``dataset`` / ``features`` fields.
    """
    out: list[Pin] = []
    lineage = _lineage(version)
    for d in lineage.get("datasets") or []:
        ref = d.get("ref") if isinstance(d, dict) else d
        if ref:
            out.append(Pin.parse("dataset", str(ref)))
    for f in lineage.get("features") or []:
        if isinstance(f, dict) and f.get("name"):
            out.append(Pin("features", str(f["name"]), str(f.get("version", ""))))
        elif isinstance(f, str):
            out.append(Pin.parse("features", f))
    dataset = _get(version, "dataset")
    for ref in [dataset] if isinstance(dataset, str) else list(dataset or []):
        out.append(Pin.parse("dataset", str(ref)))
    features = _get(version, "features")
    for ref in [features] if isinstance(features, str) else list(features or []):
        out.append(Pin.parse("features", str(ref)))
    return out


def schema_of(version: Any) -> Any:
    """The data schema recorded at registration (``lineage.schema`` or ``lineage.extra.schema``)."""
    lineage = _lineage(version)
    extra = lineage.get("extra") if isinstance(lineage.get("extra"), dict) else {}
    return _get(version, "schema") or lineage.get("schema") or (extra or {}).get("schema")


def pins_dict(version: Any) -> dict[str, Any]:
    """What a retrain job needs to reproduce the training inputs: model, version, datasets, features."""
    pins = pins_of(version)
    return {
        "model": _get(version, "name"),
        "version": None if _get(version, "version") is None else str(_get(version, "version")),
        "datasets": [p.ref() for p in pins if p.kind == "dataset"],
        "features": [p.ref() for p in pins if p.kind == "features"],
    }


def _schema_fingerprint(schema: Any) -> str | None:
    if not schema:
        return None
    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except json.JSONDecodeError:
            return schema
    return json.dumps(schema, sort_keys=True, default=str)


def _production_versions() -> list[Any]:
    """Model versions in production anywhere (from the release engine's live services)."""
    out: list[Any] = []
    for pv in production_versions():
        if pv.record is None:
            continue
        out.append(
            {
                "name": pv.name,
                "version": pv.version,
                "environment": pv.environment,
                "service": pv.service,
                "lineage": _lineage(pv.record),
            }
        )
    return out


def find_triggers(new_version: Any, production: Iterable[Any]) -> list[dict[str, Any]]:
    """The ``retrain.required`` payloads that ``new_version`` causes against ``production`` (pure)."""
    new_pins = {(p.kind, p.base): p for p in pins_of(new_version)}
    new_schema = _schema_fingerprint(schema_of(new_version))
    payloads: list[dict[str, Any]] = []
    for prod in production:
        if _get(prod, "name") == _get(new_version, "name") and str(_get(prod, "version")) == str(
            _get(new_version, "version")
        ):
            continue
        changes: list[dict[str, Any]] = []
        for pin in pins_of(prod):
            newer = new_pins.get((pin.kind, pin.base))
            if newer is None:
                continue
            if newer.version != pin.version:
                changes.append(
                    {
                        "kind": pin.kind,
                        "name": pin.base,
                        "pinned": pin.version,
                        "available": newer.version,
                        "change": "new_version",
                    }
                )
            elif new_schema and _schema_fingerprint(schema_of(prod)) not in (None, new_schema):
                changes.append(
                    {"kind": pin.kind, "name": pin.base, "pinned": pin.version, "change": "schema"}
                )
        if changes:
            payloads.append(
                {
                    "reason": "upstream_changed",
                    "production": pins_dict(prod),
                    "environment": _get(prod, "environment") or _get(prod, "env"),
                    "service": _get(prod, "service"),
                    "changes": changes,
                    "triggered_by": {
                        "model": _get(new_version, "name"),
                        "version": str(_get(new_version, "version")),
                    },
                }
            )
    return payloads


def check_retrain_triggers(new_version: Any, production: Iterable[Any] | None = None) -> list[dict[str, Any]]:
    """Emit ``retrain.required`` for each production model whose pinned inputs ``new_version`` supersedes.

    ``new_version``: the just-registered model version (object or dict with name, version, dataset,
    features, schema). ``production``: the model versions in production (default: the live services
    recorded by the release engine, resolved in the registry). Returns the events as sent.
    """
    prod = list(production) if production is not None else _production_versions()
    events: list[dict[str, Any]] = []
    for payload in find_triggers(new_version, prod):
        subject = f"{payload['production']['model']}:{payload['production']['version']}"
        events.append(emit("retrain.required", subject, payload).event)
    return events


def on_model_registered(event: dict[str, Any]) -> None:
    """``model.registered`` → ``retrain.required`` for each production model it supersedes. The
    version is read back from the registry (the event's data is scrubbed for sinks; the pins and
    schema must be compared as recorded)."""
    data = event.get("data") or {}
    model, version = data.get("model"), data.get("version")
    if not model or not version:
        return  # not a registration this subscriber can act on (another emitter's event): never fail the emitter
    check_retrain_triggers(registry.get_version(str(model), str(version)))
