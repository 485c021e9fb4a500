"""Strategy settings for one release (stored with it, so a resumed release behaves the same)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from control_plane.errors import MlctlError
from control_plane.release.analysis import Thresholds

Strategy = Literal["blue-green", "canary", "shadow", "rollback"]
OutputKind = Literal["auto", "classifier", "regression"]
STRATEGIES: tuple[str, ...] = ("blue-green", "canary", "shadow")
THEN: tuple[str, ...] = ("blue-green",)  # what a passed shadow release may continue with


@dataclass(frozen=True)
class ShadowThresholds:
    """How a shadow release judges the candidate's answers against production's (``release.shadow``)."""

    min_agreement: float = 0.95  # fraction of compared rows that must agree
    max_relative_difference: float = 0.01  # regression: |candidate - production| / |production|
    output: OutputKind = "auto"  # auto: several output columns = classifier, one = regression
    max_latency_ratio: float = 2.0  # candidate p95 over production p95 on the same requests
    latency_floor_seconds: float = 0.005  # p95 differences below this never fail

    def __post_init__(self) -> None:
        if not 0 <= self.min_agreement <= 1:
            raise MlctlError(
                f"min-agreement {self.min_agreement} must be between 0 and 1",
                hint="e.g. --min-agreement 0.95",
            )
        if self.max_relative_difference < 0 or self.max_latency_ratio <= 0:
            raise MlctlError(
                "max-relative-difference must be ≥ 0 and max-latency-ratio > 0",
                hint="e.g. --max-relative-difference 0.01",
            )
        if self.output not in ("auto", "classifier", "regression"):
            raise MlctlError(
                f"unknown output kind {self.output!r}", hint="use auto, classifier or regression"
            )


@dataclass(frozen=True)
class ReleaseConfig:
    strategy: Strategy = "blue-green"
    ready_timeout: float = 120.0  # seconds for the candidate to become ready
    smoke_latency_bound: float = 1.0  # seconds for one smoke inference
    pre_analysis_requests: int = 50  # synthetic requests sent to the candidate before any traffic
    analysis_window: float = 10.0  # seconds of production traffic analysed after the switch
    canary_steps: tuple[int, ...] = (10, 25, 50)  # candidate weight at each canary step
    canary_pause: float = 10.0  # seconds at each step before its analysis
    scale_down_delay: float = 30.0  # the old colour stays up this long after DONE (instant rollback)
    thresholds: Thresholds = field(default_factory=Thresholds)
    # shadow: the candidate answers a copy of mirror_percent % of production's requests for
    # shadow_window seconds; then (None: stop after the comparison) a blue-green cutover.
    mirror_percent: int = 10
    shadow_window: float = 60.0
    then: str | None = None
    shadow: ShadowThresholds = field(default_factory=ShadowThresholds)

    def __post_init__(self) -> None:
        if self.strategy not in (*STRATEGIES, "rollback"):
            raise MlctlError(f"unknown strategy {self.strategy!r}", hint="use blue-green, canary or shadow")
        if not 1 <= self.mirror_percent <= 100:
            raise MlctlError(
                f"mirror percent {self.mirror_percent} must be between 1 and 100",
                hint="e.g. --mirror-percent 10",
            )
        if self.then is not None and (self.then not in THEN or self.strategy != "shadow"):
            raise MlctlError(
                f"--then {self.then} is not possible with strategy {self.strategy}",
                hint="--then blue-green continues a passed shadow release (--strategy shadow)",
            )
        steps = list(self.canary_steps)
        if any(not 0 < s < 100 for s in steps) or steps != sorted(set(steps)):
            raise MlctlError(
                f"canary steps {steps} must be increasing percentages between 1 and 99",
                hint="e.g. --steps 10,25,50",
            )
        for name in (
            "ready_timeout",
            "analysis_window",
            "canary_pause",
            "scale_down_delay",
            "smoke_latency_bound",
            "shadow_window",
        ):
            if getattr(self, name) < 0:
                raise MlctlError(f"{name.replace('_', '-')} must not be negative", hint="use 0 or more")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["canary_steps"] = list(self.canary_steps)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReleaseConfig:
        data = dict(data)
        data["thresholds"] = Thresholds(**data.get("thresholds") or {})
        data["shadow"] = ShadowThresholds(**data.get("shadow") or {})
        data["canary_steps"] = tuple(data.get("canary_steps") or ())
        return cls(**data)
