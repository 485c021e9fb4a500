"""Register, look up, materialize and sign model versions.

Immutability and races: a version's bytes go to a content-addressed prefix
(``models/NAME/V/<root hex>``) *before* the row is inserted; the row insert (unique on NAME, V)
and its audit entry commit in one transaction. Of several concurrent registrations exactly one
insert wins; a loser with the same bytes returns the winner (a no-op), a loser with other bytes
deletes its own prefix (never the winner's, which has another root) and is refused.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from control_plane import audit, identity
from control_plane.artifacts import ArtifactStore, LocalArtifactStore, get_store, store_for_uri
from control_plane.errors import Conflict, MlctlError, NotFound, UsageError
from control_plane.events import emit
from control_plane.output import info
from control_plane.pii import guard
from control_plane.provenance import statement as provenance_statement
from control_plane.registry import lineage as lin
from control_plane.registry.models import ModelVersionRow
from control_plane.registry.view import ModelVersion
from control_plane.signing import PINNED_HASHING, model_digests
from control_plane.store import session_scope


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _prefix(name: str, version: str, root_hex: str) -> str:
    return f"models/{name}/{version}/{root_hex}"


def _row(session: Any, name: str, version: str) -> ModelVersionRow | None:
    return session.execute(
        select(ModelVersionRow).where(ModelVersionRow.name == name, ModelVersionRow.version == version)
    ).scalar_one_or_none()


def get_version(name: str, version: str) -> ModelVersion:
    lin.check_name(name)
    lin.check_version(version)
    with session_scope() as s:
        row = _row(s, name, version)
        if row is None:
            known = s.execute(
                select(ModelVersionRow.version).where(ModelVersionRow.name == name).order_by(ModelVersionRow.id)
            ).scalars().all()
            hint = (f"registered versions of {name}: {', '.join(known)}" if known
                    else f"register it first: mlctl model register {name} --version {version} --path DIR")
            raise NotFound(f"model {name}:{version} is not registered", hint=hint)
        return ModelVersion.from_row(row)


def get_ref(ref: str) -> ModelVersion:
    return get_version(*lin.parse_ref(ref))


def list_versions(name: str | None = None) -> list[ModelVersion]:
    with session_scope() as s:
        q = select(ModelVersionRow).order_by(ModelVersionRow.name, ModelVersionRow.id)
        if name is not None:
            q = q.where(ModelVersionRow.name == name)
        return [ModelVersion.from_row(r) for r in s.execute(q).scalars()]


def _dependencies(lineage: Mapping[str, Any]) -> list[dict[str, Any]]:
    deps: list[dict[str, Any]] = []
    for ds in lineage.get("datasets", []):
        deps.append({"name": "dataset", "uri": ds["uri"], "digest": ds["digest"]})
    for ft in lineage.get("features", []):
        deps.append({"name": "features", "uri": f"features://{ft['name']}@{ft['version']}",
                     "annotations": {"feature_set": ft["name"], "version": ft["version"]}})
    code = lineage.get("code", {})
    dep: dict[str, Any] = {"name": "code", "uri": code.get("repository") or "git+unknown"}
    if code.get("commit") and code["commit"] != "unknown":
        dep["digest"] = {"gitCommit": code["commit"]}
    if code.get("dirty"):
        dep["annotations"] = {"dirty": True}
    deps.append(dep)
    for key in ("parent", "derived_from"):
        ref = lineage.get(key)
        if ref:
            deps.append({"name": key, "uri": f"mlctl-model://{ref['ref']}", "digest": {"sha256": ref["root"]}})
    return deps


def _resolve_ref(ref: str | None, flag: str) -> dict[str, str] | None:
    if not ref:
        return None
    name, version = lin.parse_ref(ref, flag)
    try:
        mv = get_version(name, version)
    except NotFound:
        raise NotFound(f"{flag} {ref}: no such registered model version",
                       hint="register the parent first, or fix the reference") from None
    return {"ref": mv.ref, "root": mv.root_hex}


def register(
    name: str,
    version: str,
    path: str | Path,
    *,
    datasets: Sequence[str] = (),
    features: Sequence[str] = (),
    code_commit: str | None = None,
    code_pin: Mapping[str, Any] | None = None,
    config: str | Path | None = None,
    params: str | Path | Mapping[str, Any] | None = None,
    metrics: str | Path | Mapping[str, Any] | None = None,
    parent: str | None = None,
    classification: str = "internal",
    derived_from: str | None = None,
    lineage_extra: Mapping[str, Any] | None = None,
    store: ArtifactStore | None = None,
    builder: Mapping[str, str] | None = None,
) -> ModelVersion:
    """Register ``path`` as NAME:VERSION with its lineage. Identical bytes again: a no-op that
    returns the existing version; other bytes, or the same bytes with other lineage: Conflict.
    ``derived_from`` + ``lineage_extra`` record what an optimizer derived this version from and how
    (precision, TensorRT, GPU, container...); ``code_pin`` carries a source's code pin over verbatim.
    ``builder`` (``build_type``, ``builder_id``, ``invocation_id``): who built the bytes, for the SLSA
    provenance; a training pipeline names its run here (default: this registration).

    Not authorized here: ``control_plane.services.models.register`` checks ``model.register`` (and
    the verbs that register as part of their work, optimize and pipeline runs, check it for theirs)."""
    lin.check_name(name)
    lin.check_version(version)
    ref = f"{name}:{version}"
    if classification not in lin.CLASSIFICATIONS:
        raise lin.LineageError(f"--classification {classification!r} is not known",
                               hint=f"use one of: {', '.join(lin.CLASSIFICATIONS)}")
    src = Path(path)
    if src.is_file():
        raise UsageError(f"--path {src} is a file, not a model directory",
                         hint=f"pass the directory that holds it: --path {src.parent}")
    if not src.is_dir():
        raise NotFound(f"--path {src}: no such model directory", hint="pass the directory holding the model files")
    if not any(p.is_file() for p in src.rglob("*")):
        raise UsageError(f"--path {src} holds no files: there is nothing to register",
                         hint="pass the directory the training job wrote the model files to")
    started = now()

    # Validate every pin before any bytes move.
    lineage: dict[str, Any] = {
        "datasets": [lin.parse_dataset(d) for d in datasets],
        "features": [lin.parse_features(f) for f in features],
        "code": dict(code_pin) if code_pin is not None else lin.code_commit(code_commit, src),
    }
    if lineage["code"]["commit"] == "unknown" and code_pin is None:
        info(f"[yellow]note:[/] {lineage['code']['note']}; recording code commit 'unknown'")
    config_bytes: bytes | None = None
    if config is not None:
        config_bytes, config_sha = lin.read_config(Path(config))
        lineage["config"] = {"file": Path(config).name, "sha256": config_sha}
    for key, value in (("params", params), ("metrics", metrics)):
        if value is not None:
            lineage[key] = dict(value) if isinstance(value, Mapping) else lin.read_json_object(Path(value), f"--{key}")
    lineage["parent"] = _resolve_ref(parent, "--parent")
    lineage["derived_from"] = _resolve_ref(derived_from, "derived_from")
    if lineage_extra:
        lineage["extra"] = json.loads(json.dumps(dict(lineage_extra), default=str))

    # Personal data never enters the registry unclassified: sample inputs, evaluation and feature
    # files in the model directory are scanned (kinds and places are audited, never values).
    guard(src, classification)
    schema = _eval_schema(src)
    if schema is not None:
        lineage["schema"] = schema

    root_hex, files = model_digests(src)
    root = f"sha256:{root_hex}"

    existing = _lookup(name, version)
    if existing is not None:
        if existing.root_digest == root:
            _same_lineage_or_refuse(existing, lineage, classification)
            return existing  # identical bytes and lineage: registering again is a no-op
        _refuse(existing, root)

    store = store or get_store()
    prefix = _prefix(name, version, root_hex)
    if config_bytes is not None:
        lineage["config"]["uri"] = store.put_blob(f"configs/sha256/{lineage['config']['sha256']}", config_bytes)
    artifact_uri = store.put_dir(src, prefix, files)

    ext: dict[str, Any] = {"params": lineage.get("params", {})}
    if "config" in lineage:
        ext["config"] = {"uri": lineage["config"]["uri"], "digest": {"sha256": lineage["config"]["sha256"]}}
    provenance = _statement(name, version, root_hex, lineage, ext, classification, started, builder)

    who = _acting().name
    try:
        with session_scope() as s:
            row = ModelVersionRow(
                name=name, version=version, root_digest=root, files=json.dumps(files, sort_keys=True),
                artifact_uri=artifact_uri, classification=classification,
                lineage=json.dumps(lineage, sort_keys=True), derived_from=lineage["derived_from"]["ref"]
                if lineage["derived_from"] else None, registered_by=who, created_at=now(),
                provenance=json.dumps(provenance, sort_keys=True),
            )
            s.add(row)
            s.flush()  # the unique (name, version) index decides the race here
            audit.record(action="model.register", subject=ref, digests={"root": root},
                         details={"artifact_uri": artifact_uri, "classification": classification,
                                  "files": len(files), "derived_from": row.derived_from}, session=s)
            mv = ModelVersion.from_row(row, created=True)
    except IntegrityError:
        winner = _lookup(name, version)
        if winner is None:
            raise
        if winner.root_digest == root:
            return winner  # a concurrent registration of the same bytes won: same prefix, nothing to undo
        store.delete_prefix(prefix)  # ours only: the winner's bytes live under another root
        _refuse(winner, root)
    _retrain_triggers(mv)
    return mv


def _eval_schema(src: Path) -> dict[str, Any] | None:
    """The evaluation set's schema (types, ranges, nulls, categories), recorded so the validation
    gate can check later evaluation data against what the model was registered with."""
    from control_plane.data.schema import (
        infer_schema,  # lazy: pandas (~0.6 s), every mlctl command's start-up
    )

    eval_file = src / "eval.npz"
    if not eval_file.is_file():
        return None
    with np.load(eval_file) as data:
        if "X" not in data:
            return None
        return infer_schema(np.asarray(data["X"]))


def _retrain_triggers(mv: ModelVersion) -> None:
    """Announce the registration (``model.registered``): retrain triggers subscribe to it (a newer
    dataset or feature set than a production model pins is a reason to retrain). A failing event
    sink or subscriber must not undo a registration that has already happened."""
    pins = {"datasets": [d.get("ref") for d in mv.lineage.get("datasets") or [] if isinstance(d, dict)],
            "features": [f"{f.get('name')}@{f.get('version')}" for f in mv.lineage.get("features") or []
                         if isinstance(f, dict)]}
    try:
        emit("model.registered", mv.ref, {"model": mv.name, "version": mv.version, "root_digest": mv.root_digest,
                                          "classification": mv.classification, **pins})
    except MlctlError as exc:
        info(f"[yellow]warning:[/] retrain triggers not evaluated: {exc.message}")


def _lookup(name: str, version: str) -> ModelVersion | None:
    with session_scope() as s:
        row = _row(s, name, version)
        return ModelVersion.from_row(row) if row is not None else None


def _pins(lineage: Mapping[str, Any], classification: str) -> dict[str, Any]:
    """What a registrant asserts about a version (not how mlctl found it): compared on re-registration."""
    code = lineage.get("code") or {}
    return {
        "datasets": sorted(d["ref"] for d in lineage.get("datasets", [])),
        "features": sorted(f"{f['name']}@{f['version']}" for f in lineage.get("features", [])),
        "code commit": code.get("commit"),
        "config": (lineage.get("config") or {}).get("sha256"),
        "params": lineage.get("params") or {},
        "metrics": lineage.get("metrics") or {},
        "parent": (lineage.get("parent") or {}).get("ref"),
        "derived from": (lineage.get("derived_from") or {}).get("ref"),
        "classification": classification,
    }


def _same_lineage_or_refuse(existing: ModelVersion, lineage: Mapping[str, Any], classification: str) -> None:
    """Identical bytes with other lineage is not a no-op: silently keeping the old pins would drop
    what the user just asserted, and changing them would rewrite history. Versions are immutable."""
    theirs = _pins(existing.lineage, existing.classification)
    mine = _pins(lineage, classification)
    differ = [k for k in mine if mine[k] != theirs[k]]
    if not differ:
        return
    detail = "; ".join(f"{k}: registered {theirs[k]!r}, now {mine[k]!r}" for k in differ)
    audit.record(action="model.register", subject=existing.ref, decision="deny",
                 reasons=[f"identical bytes with other lineage ({', '.join(differ)})"],
                 digests={"root": existing.root_digest})
    raise Conflict(
        f"{existing.ref} is already registered with these bytes but other lineage ({detail}); "
        "versions are immutable, their lineage too",
        hint=f"register it as a new version with the lineage you mean, e.g. --version {existing.version}.1",
    )


def _refuse(existing: ModelVersion, root: str) -> None:
    audit.record(action="model.register", subject=existing.ref, decision="deny",
                 reasons=[f"{existing.ref} is registered with other bytes ({existing.root_digest})"],
                 digests={"root": root})
    raise _conflict(existing.name, existing.version, existing.root_digest, root)


def _conflict(name: str, version: str, theirs: str, mine: str) -> Conflict:
    return Conflict(
        f"{name}:{version} is already registered with other bytes (registered {theirs[:23]}…, "
        f"yours {mine[:23]}…); versions are immutable",
        hint=f"register the new bytes as a new version, e.g. --version {version}.1",
    )


def _statement(name: str, version: str, root_hex: str, lineage: Mapping[str, Any], ext: Mapping[str, Any],
               classification: str, started: str,
               builder: Mapping[str, str] | None = None) -> dict[str, Any]:
    internal = {"classification": classification, "hashing": PINNED_HASHING.serialization_parameters()}
    if lineage.get("extra"):
        internal["derivation"] = lineage["extra"]
    return provenance_statement(
        name=name, version=version, root_digest_hex=root_hex, dependencies=_dependencies(lineage),
        external_parameters=ext, internal_parameters=json.loads(json.dumps(internal, default=str)),
        invocation_id=(builder or {}).get("invocation_id") or str(uuid.uuid4()), started_on=started,
        finished_on=now(),
        **{k: v for k, v in (builder or {}).items() if k in ("build_type", "builder_id")},
    )


def artifact_location(mv: ModelVersion) -> tuple[ArtifactStore, str]:
    """The store holding a version's bytes and their prefix in it (``models/NAME/V/<root hex>``)."""
    prefix = _prefix(mv.name, mv.version, mv.root_hex)
    if mv.artifact_uri.startswith("file://"):
        # The recorded location, not today's $MLCTL_HOME: a shared PostgreSQL registry may be read
        # from another home on the same machine.
        from urllib.parse import unquote, urlparse

        path = unquote(urlparse(mv.artifact_uri).path)
        if not path.endswith("/" + prefix):
            raise NotFound(f"{mv.ref}: artifact URI {mv.artifact_uri} does not hold {prefix}",
                           hint="the registry record was altered; restore it from backup")
        store: ArtifactStore = LocalArtifactStore(Path(path[: -len(prefix) - 1]))
    else:
        store = store_for_uri(mv.artifact_uri)
    return store, prefix


def materialize(name: str, version: str, dest: str | Path) -> Path:
    """Download exactly the registered bytes into ``dest`` (each file's sha256 checked)."""
    mv = get_version(name, version)
    store, prefix = artifact_location(mv)
    return store.get_dir(prefix, Path(dest), mv.files)


@contextmanager
def materialized(name: str, version: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="mlctl-model-") as tmp:
        yield materialize(name, version, Path(tmp) / name)


def _acting() -> Any:
    return identity.current()
