"""One base error type for everything a user can get wrong or fix.

Every error carries the *fix* as well as the problem (sigstore-python style): the CLI prints
both and exits with ``exit_code``; it never shows a traceback for an ``MlctlError``.

Exit codes are one table (``EXIT_CODES``), printed by ``mlctl --help`` and in the README. New
commands pick the error class whose row fits (a bad flag or input file is ``UsageError``, a
missing thing ``NotFound``, a gate or RBAC denial ``PolicyViolation``...) and never invent a code;
a command whose *outcome* is a state (a release paused or rolled back) exits with that state's code
from the table (``EXIT_ROLLED_BACK``, ``EXIT_PAUSED``, ``EXIT_IN_PROGRESS``).
"""

from __future__ import annotations

# (code, name, meaning): the one documented table. Keep README.md's "Exit codes" in step (a test does).
EXIT_CODES: tuple[tuple[int, str, str], ...] = (
    (0, "ok", "success (a release: DONE)"),
    (1, "error", "an unexpected failure (a bug: please report it with the command)"),
    (2, "usage", "bad command line or input: unknown flag, malformed value, unreadable or invalid file"),
    (3, "infra", "terraform, the emulator, a model server or the state backend failed"),
    (4, "refused", "a policy gate or RBAC refused the action (the message names the gate and the fix)"),
    (5, "drift", "drift found: infrastructure differs from the blueprint, or data from its reference"),
    (6, "not-found", "a named model, version, release, service, environment or file does not exist"),
    (7, "conflict", "conflicts with recorded state: immutable version, release in progress, wrong state"),
    (8, "verification", "a signature, digest or audit-chain check failed"),
    (9, "tool-missing", "an external tool or device is not available (terraform, nginx, NVML, TensorRT)"),
    (10, "rolled-back", "the release ended ROLLED_BACK (its analysis or a check failed)"),
    (11, "paused", "the release is paused for a person: mlctl release promote|abort SERVICE"),
    (12, "in-progress", "release status: a release is still in progress (not yet DONE)"),
    (13, "degraded", "release status: the runtime does not serve what the registry says is live"),
    (130, "interrupted", "interrupted (Ctrl-C)"),
)
EXIT_ROLLED_BACK = 10
EXIT_PAUSED = 11
EXIT_IN_PROGRESS = 12
EXIT_DEGRADED = 13


def exit_code_table() -> str:
    """The table as plain text (``mlctl --help`` epilog)."""
    return "\n".join(f"{code:>4}  {name:<13} {meaning}" for code, name, meaning in EXIT_CODES)


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


class UsageError(MlctlError):
    """A malformed flag, argument or input file: the user fixes the command line."""

    exit_code = 2


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
