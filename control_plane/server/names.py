"""The names a request may carry for an environment or a blueprint: bare names of the server's own
blueprints, never paths (``environments.served_name``). Every request model's ``env`` field is an
``EnvName`` and every ``blueprint`` field a ``BlueprintName``, so the rule is checked once, while
the request is parsed, before any route or service sees the value: a blueprint decides which KMS
key signs, which cluster is deployed to and which tier's approval rules apply, all with the
server's credentials, so a caller must never point the server at a file.

The validators raise the service layer's own errors (a pydantic validator lets any exception that is
not a ValueError through unchanged): a path is a UsageError (422, naming the field and the fix), an
unknown environment a NotFound (404, naming the server's environments) — the same bodies as every
other refusal, and raised before anything is started, changed or audited.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, ValidationInfo

from control_plane import environments

__all__ = ["BlueprintName", "EnvName", "environment_named"]


def environment_named(value: str, what: str = "env") -> str:
    """An environment the server has, by name (UsageError for a path, NotFound for an unknown name)."""
    return environments.served_environment(value, what=what)


def _environment(value: str, info: ValidationInfo) -> str:
    return environment_named(value, info.field_name or "env")


def _blueprint(value: str, info: ValidationInfo) -> str:
    # Existence is the route's (infra also takes the server's MLCTL_BLUEPRINT by its stem).
    return environments.served_name(value, what=info.field_name or "blueprint", hint=(
        "give a blueprint the server has by name, e.g. uae-local"))


EnvName = Annotated[str, AfterValidator(_environment)]
BlueprintName = Annotated[str, AfterValidator(_blueprint)]
