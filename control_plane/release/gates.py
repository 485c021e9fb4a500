"""Gates that run before anything is applied: signature + digests, approvals, residency.

Each gate raises ``GateRefused`` naming itself and every reason; the engine audits the refusal
(decision ``deny``) and ends the release REFUSED with nothing applied.

- **signature**: the registry materializes the exact registered bytes into the directory the
  runtime will serve (``registry.materialize``), and ``signing.verify_model`` checks that very
  directory against the registered signature with a key from the environment's trusted keyring
  (``signing.keyring``: its KMS key, pinned keys; the development key only in dev tiers), then the
  root digest against the registry's record. Verifying the served copy (not a copy elsewhere) closes the gap between
  what was checked and what is loaded.
- **approvals**: ``approvals.gate(name, version, env)`` (Rego policy ``policies/release.rego``), by
  the environment's declared tier.
- **residency**: the environment's region is in the UAE allow-list, and the artifact lives in
  the environment's own registry (its bucket for S3; the local artifact store only for a local
  environment).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from blueprints.residency import allowed_regions
from blueprints.schema import Environment
from control_plane.environments import resolve
from control_plane.errors import MlctlError, PolicyViolation
from control_plane.signing import keyring


class GateRefused(PolicyViolation):
    """A gate denied the release; nothing was applied."""

    def __init__(self, gate: str, reasons: list[str], *, hint: str | None = None) -> None:
        self.gate = gate
        self.reasons = reasons
        super().__init__(f"release refused by the {gate} gate: {'; '.join(reasons)}", hint=hint)


@dataclass(frozen=True)
class VerifiedArtifact:
    path: Path  # the directory the runtime serves, verified in place
    digest: str  # root digest of the signed manifest
    storage_uri: str  # where the registry keeps it
    files: dict[str, str] = field(default_factory=dict)
    signer: str = ""


def environment(env_name: str) -> Environment:
    """``--env NAME``: ``blueprints/NAME.yaml`` (or a path to a blueprint file)."""
    try:
        return resolve(env_name)
    except MlctlError as exc:
        raise GateRefused("residency", [f"environment {env_name!r}: {exc.message}"], hint=exc.hint) from exc


def verify_signature(name: str, version: str, dest: Path, env: Environment) -> VerifiedArtifact:
    """Materialize ``name:version`` into ``dest`` and verify those bytes against its signature,
    with a key from ``env``'s trusted keyring (never the public key stored in the registry row;
    a staging or prod environment never accepts the development key)."""
    # The release package (and the reaper process, which imports it) loads without pandas.
    from control_plane import registry  # lazy: pulls pandas and pyarrow (schema inference, ~1 s)

    try:
        mv = registry.get_version(name, version)
        if not mv.signature.signed or not mv.signature.key_id:
            raise PolicyViolation(f"{mv.ref} is not signed", hint=f"sign it first: mlctl model sign {mv.ref}")
        trusted = keyring.trusted_key_for(env, mv.signature.key_id, mv.signature.signer_kind)
        if dest.exists():
            shutil.rmtree(dest)  # never trust a half-written copy from a crashed run
        dest.parent.mkdir(parents=True, exist_ok=True)
        path = Path(registry.materialize(name, version, dest))
        verified = registry.verify(name, version, path=path, public_key_pem=trusted.pem)
    except MlctlError as exc:
        problems = getattr(exc, "problems", None)
        reasons = [str(p) for p in problems] if problems else [exc.message]
        raise GateRefused("signature", reasons, hint=exc.hint) from exc
    if verified.root_digest != mv.root_digest:
        raise GateRefused(
            "signature", [f"served bytes have root {verified.root_digest}, the registry has {mv.root_digest}"]
        )
    return VerifiedArtifact(
        path=path,
        digest=mv.root_digest,
        storage_uri=mv.artifact_uri,
        files=dict(mv.files),
        signer=f"{verified.key_id} ({trusted.kind}, {trusted.source})",
    )


def check_approvals(name: str, version: str, env: Environment) -> list[str]:
    """The approvals policy's reasons on allow; raises GateRefused on deny. The rule is the one of
    the environment's declared tier (``tier:`` in its blueprint)."""
    from control_plane import approvals  # lazy: pulls pandas and pyarrow via the registry (~1 s)

    tier = str(env.tier)
    try:
        decision = approvals.gate(name, version, env)
    except MlctlError as exc:
        raise GateRefused("approvals", [exc.message], hint=exc.hint) from exc
    reasons = [f"{tier}: {r}" for r in decision.reasons]
    if not decision.allowed:
        raise GateRefused(
            "approvals",
            reasons or [f"not approved for {env.name} ({tier} tier)"],
            hint=f"get the approvals the policy asks for: mlctl approve {name}:{version} --env {env.name}",
        )
    return reasons


def check_residency(env: Environment, storage_uri: str) -> list[str]:
    reasons: list[str] = []
    allowed = allowed_regions(str(env.cloud))
    if env.region not in allowed:
        reasons.append(f"cluster region {env.region} is outside the UAE (allowed: {', '.join(allowed)})")
    if storage_uri.startswith("s3://"):
        bucket = storage_uri.removeprefix("s3://").split("/", 1)[0]
        if bucket != env.registries.model_bucket:
            reasons.append(
                f"artifact bucket {bucket} is not {env.name}'s registry {env.registries.model_bucket}"
            )
    elif storage_uri.startswith("file://") or storage_uri.startswith("/"):
        if not env.is_local:
            reasons.append(
                f"artifact {storage_uri} is on a local disk; {env.name} serves only from its registry"
            )
    else:
        reasons.append(f"artifact location {storage_uri} is not a registry this environment can attest")
    if reasons:
        raise GateRefused(
            "residency", reasons, hint="release from the environment's own registry in a UAE region"
        )
    return [f"region {env.region} and artifact {storage_uri} are in-region"]
