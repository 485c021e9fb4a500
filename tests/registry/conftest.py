"""Fixtures for the registry area: a roles file, model directories, acting as someone, and the
real CLI run in-process (``main`` with its error formatting and exit codes, by ``tests.cli_runner``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli_runner import run_mlctl

ROLES = {
    "dana": ["data-scientist"],
    "eli": ["ml-engineer"],
    "amira": ["approver"],
    "omar": ["approver"],
    "sara": ["security-officer"],
    "pat": ["platform-admin"],
    "ali": ["auditor"],
}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The CLI sets these for its own process; keep them from leaking between in-process runs.
    for var in ("MLCTL_BLUEPRINT", "MLCTL_ARTIFACT_STORE", "MLCTL_ROLES_FILE"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture()
def roles(mlctl_home: Path) -> Path:
    from control_plane.access.roles import write_assignments

    return write_assignments(ROLES)


@pytest.fixture()
def act_as(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    def _set(actor: str) -> None:
        monkeypatch.setenv("MLCTL_ACTOR", actor)

    return _set


def make_model(root: Path, seed: str = "a", *, files: int = 3) -> Path:
    """A small multi-file model directory (nested, binary and text files)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "weights").mkdir(exist_ok=True)
    for i in range(files):
        (root / "weights" / f"part-{i}.bin").write_bytes((seed * 1000 + str(i)).encode() * 50)
    (root / "config.json").write_text(f'{{"arch": "mlp", "seed": "{seed}"}}')
    return root


@pytest.fixture()
def model_dir(tmp_path: Path) -> Path:
    return make_model(tmp_path / "model")


def run_cli(*args: str) -> tuple[int, str, str]:
    """``mlctl ARGS`` in this process (``tests.cli_runner.run_mlctl``); (exit code, stdout, stderr
    with line wrapping undone)."""
    result = run_mlctl(*args, in_process=True)
    return result.returncode, result.stdout, " ".join(result.stderr.split())
