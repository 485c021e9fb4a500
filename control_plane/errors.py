"""One base error type for everything a user can get wrong or fix.

Every error carries the *fix* as well as the problem (sigstore-python style): the CLI prints
both and exits with ``exit_code``; it never shows a traceback for an ``MlctlError``.
"""

from __future__ import annotations


class MlctlError(Exception):
    """A failure the user can act on. ``hint`` says how; ``exit_code`` is what mlctl exits with."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  fix: {self.hint}"


class BlueprintError(MlctlError):
    """A blueprint file that cannot be read or does not validate."""

    exit_code = 2


class InfraError(MlctlError):
    """terraform, the emulator or the state backend failed."""

    exit_code = 3


class PolicyViolation(MlctlError):
    """A policy gate denied the action (infra guardrails, RBAC, approvals, release gates)."""

    exit_code = 4


class DriftDetected(MlctlError):
    """Deployed infrastructure no longer matches the blueprint."""

    exit_code = 5


class NotFound(MlctlError):
    """A named model, version, release or service does not exist."""

    exit_code = 6


class Conflict(MlctlError):
    """The action conflicts with recorded state (immutable version, lock held, wrong state)."""

    exit_code = 7


class VerificationFailed(MlctlError):
    """A signature, digest or audit-chain check failed."""

    exit_code = 8


class ToolMissing(MlctlError):
    """An external tool or library (terraform, nginx, NVML, TensorRT) is not available."""

    exit_code = 9


class PipelineFailed(MlctlError):
    """A pipeline step failed (fetch/verify of the data set, registration); ``step`` names it.

    The subclasses tell automation which stage stopped the run by their exit code alone."""

    exit_code = 20

    def __init__(self, message: str, *, step: str = "", hint: str | None = None,
                 exit_code: int | None = None) -> None:
        super().__init__(message, hint=hint, exit_code=exit_code)
        self.step = step


class DataTestFailed(PipelineFailed):
    """The data tests (feature schema, PII guard, transformation unit tests) refused the data."""

    exit_code = 21


class TrainingFailed(PipelineFailed):
    """The training entry point failed or broke its contract (model.json, metrics)."""

    exit_code = 22


class EvaluationFailed(PipelineFailed):
    """The candidate failed the validation gate (baseline metrics, robustness)."""

    exit_code = 23
