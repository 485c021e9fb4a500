"""``PENDING → VERIFIED → APPROVED``: the gate steps, before anything is applied.

VERIFIED materializes the exact signed bytes the runtime will serve and records the release's
``Deployment`` (digest, storage URI, local copy); APPROVED checks residency of that artifact and
the environment tier's approvals. Both only read or write the release row and files under the
release's directory, so re-running them after a crash is harmless. A refusal
(``gates.GateRefused``) ends the release REFUSED with nothing applied (see ``engine.Engine.run``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from control_plane.drivers.base import Deployment
from control_plane.release import gates, repository
from control_plane.settings import state_dir
from control_plane.store import session_scope

if TYPE_CHECKING:
    from control_plane.release.config import ReleaseConfig
    from control_plane.release.engine import Engine
    from control_plane.release.models import ReleaseRow


def verified(eng: Engine, row: ReleaseRow, cfg: ReleaseConfig, step: int) -> dict[str, Any]:
    dest = state_dir("releases", row.id) / "model"
    env = gates.environment(row.environment)
    art = gates.verify_signature(row.model_name, row.model_version, dest, env)
    dep = Deployment(
        service=row.service,
        model_name=row.model_name,
        model_version=row.model_version,
        digest=art.digest,
        release_id=row.id,
        storage_uri=art.storage_uri,
        local_path=art.path,
        environment=env.name,
    )
    with session_scope() as s:
        repository.set_deployment(repository.load(s, row.id), dep)
    repository.set_deployment(row, dep)  # the caller's copy too: the next step reads it
    return {"digest": art.digest, "files": len(art.files), "storage_uri": art.storage_uri, "signer": art.signer}


def approved(eng: Engine, row: ReleaseRow, cfg: ReleaseConfig, step: int) -> dict[str, Any]:
    env = gates.environment(row.environment)
    dep = repository.deployment_of(row)
    residency = gates.check_residency(env, dep.storage_uri)
    approvals = gates.check_approvals(row.model_name, row.model_version, env)
    return {"approvals": approvals, "residency": residency}
