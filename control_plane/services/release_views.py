"""What the release verbs return and how a front end follows them: the progress hooks, the views
(JSON: ``release.view.describe``'s keys, docs/cli.md) and the status tables people read."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from control_plane.errors import (
    EXIT_DEGRADED,
    EXIT_IN_PROGRESS,
    EXIT_PAUSED,
    EXIT_ROLLED_BACK,
    PolicyViolation,
)
from control_plane.output import table
from control_plane.release import engine

__all__ = ["ReleaseHooks", "ReleaseListView", "ReleaseView", "status_exit_code"]


def status_exit_code(data: dict[str, Any]) -> int:
    """``release status``'s exit code from its view: 0 DONE and serving, 4 REFUSED, 10 ROLLED_BACK,
    11 paused for a person, 12 in progress, 13 done but the runtime does not serve it."""
    state = data["state"]
    if state == engine.REFUSED:
        return PolicyViolation.exit_code
    if state == engine.ROLLED_BACK:
        return EXIT_ROLLED_BACK
    if state not in engine.TERMINAL:
        return EXIT_PAUSED if data.get("paused") else EXIT_IN_PROGRESS
    return EXIT_DEGRADED if (data.get("runtime") or {}).get("serving") is False else 0


# --- progress ------------------------------------------------------------------------------------


@dataclass
class ReleaseHooks:
    """What a front end sees while a verb runs (never changes behaviour): the engine's transitions
    and analysis countdowns, and notes (one line each) about what the verb is doing."""

    on_transition: Callable[[str, str, str], None] | None = None  # (release_id, state, phase)
    on_window: Callable[[str, str, float], None] | None = None  # (release_id, window, seconds left)
    on_note: Callable[[str], None] | None = None
    # Where the engine runs once the release is recorded: None, in the caller (the CLI waits for the
    # end); else a function handed the drive (the API server's background jobs), and the verb
    # returns at once with the release as recorded (exit code 12, in progress).
    detach: Callable[[Callable[[], ReleaseView]], None] | None = None

    def engine_hooks(self) -> engine.Hooks:
        return engine.Hooks(on_transition=self.on_transition, on_window=self.on_window)

    def note(self, message: str) -> None:
        if self.on_note:
            self.on_note(message)


# --- views ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReleaseView:
    """One release (``describe``'s JSON, plus ``runtime`` for status) and how it came out.

    ``data`` is None when there is nothing to show: a promote/abort was recorded for the mlctl
    process that drives the release (``note`` says so)."""

    data: dict[str, Any] | None
    state: str | None = None
    exit_code: int = 0
    refusal: PolicyViolation | None = None
    note: str | None = None

    def as_json(self) -> Any:
        return self.data

    def renderables(self) -> Iterable[Any]:
        if self.data is not None:
            yield from _tables(self.data)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.refusal is None


@dataclass(frozen=True)
class ReleaseListView:
    """``release list`` / ``release history``: summary rows, newest first."""

    title: str
    rows: list[dict[str, Any]]
    history: bool = False

    def as_json(self) -> Any:
        return self.rows

    def renderables(self) -> Iterable[Any]:
        rows = self.rows
        if self.history:
            yield table(self.title, ["release", "model", "replaced", "strategy", "state", "by", "created", "why"],
                        [(r["release"], r["model"], r["previous_version"] or "-", r["strategy"], r["state"],
                          r["created_by"], r["created_at"], "; ".join(r["reasons"]) or r["paused"] or "")
                         for r in rows])
            return
        yield table(self.title, ["release", "service", "model", "env", "strategy", "state", "by", "created"],
                    [(r["release"], r["service"], r["model"], r["environment"], r["strategy"],
                      r["state"] + (" (paused)" if r["paused"] and r["state"] not in engine.TERMINAL else ""),
                      r["created_by"], r["created_at"]) for r in rows])


# --- the status tables (what `mlctl release` shows people) ---------------------------------------


def _tables(view: dict[str, Any]) -> Iterator[Any]:
    state = view["state"] + (f" → {view['in_progress']} (in progress)" if view["in_progress"] else "")
    rows = [
        ("release", view["release"]),
        ("model", view["model"]),
        ("digest", view["digest"] or "-"),
        ("environment", view["environment"]),
        ("strategy", view["strategy"]),
        ("state", state),
        ("candidate colour", view["colour"]),
        ("weights", ", ".join(f"{c} {w}%" for c, w in sorted((view["weights"] or {}).items())) or "-"),
    ]
    runtime = view.get("runtime") or {}
    if view["live"]:
        serving = "" if runtime.get("serving") is not False else " (registry) — runtime NOT serving"
        rows.append(("live", f"{view['live']['version']} on {view['live']['colour']}{serving}"))
    if runtime.get("detail"):
        rows.append(("runtime", runtime["detail"]))
    if view["paused"]:
        rows.append(("paused", view["paused"]))
    for reason in view["reasons"]:
        rows.append(("reason", reason))
    yield table(f"release {view['service']}", ["field", "value"], rows)
    for a in view["analysis"]:
        if a.get("comparison"):
            c = a["comparison"]
            yield table(
                "shadow comparison (same requests)",
                ["measure", "candidate", "production"],
                [
                    ("requests in the window", c.get("mirrored_requests"), c.get("production_requests")),
                    ("joined by request id", c.get("joined", "-"), c.get("joined", "-")),
                    ("agreement", "-" if c.get("agreement") is None else f"{c['agreement']:.2%}", ""),
                    ("error rate", f"{c['candidate_error_rate']:.2%}", f"{c['production_error_rate']:.2%}"),
                    ("p95 ms", _ms(c.get("candidate_p95_seconds")), _ms(c.get("production_p95_seconds"))),
                ],
            )
    if view["analysis"]:
        yield table(
            "analysis",
            ["name", "verdict", "requests", "error rate", "p95 ms", "why"],
            [
                (
                    a["name"],
                    a["verdict"],
                    a["requests"],
                    f"{a['error_rate']:.2%}",
                    "-" if a["p95_seconds"] is None else f"{a['p95_seconds'] * 1000:.1f}",
                    "; ".join(a["reasons"]),
                )
                for a in view["analysis"]
            ],
        )


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"
