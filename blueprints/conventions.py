"""Names both halves of the repository agree on: the infrastructure programs (``stacks/``, run by
``cdktf``/``pulumi`` as their own processes) and the control plane that bootstraps, applies and
inspects what they render. Kept with the environment model so that neither half imports the other.
"""

from __future__ import annotations

from blueprints.schema import Environment
from control_plane.settings import current as settings

__all__ = ["DUMMY_CREDENTIALS", "STACKS_INDEX", "emulator_endpoint", "state_key_alias"]

# The index `python -m stacks` writes beside the synthesized stacks (what mlctl reads back).
STACKS_INDEX = "mlctl-stacks.json"

# The emulator's well-known dummy credentials (moto accepts any): never a secret.
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


def state_key_alias(env: Environment) -> str:
    """The KMS alias of the key that encrypts this environment's Terraform state."""
    return f"alias/{env.name}-tfstate"


def emulator_endpoint(env: Environment | None = None) -> str:
    """Where the embedded environment's AWS emulator listens: ``MLCTL_EMULATOR_ENDPOINT`` (a test's
    or the demo's own port), else the blueprint's ``emulator.endpoint``, else moto's default."""
    override = settings().emulator_endpoint
    if override:
        return override.rstrip("/")
    if env is not None and env.emulator is not None:
        return env.emulator.endpoint.rstrip("/")
    return "http://127.0.0.1:4566"
