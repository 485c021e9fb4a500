"""The README's "Quick tour", extracted from README.md and run as written in a fresh home.

The tour's first fenced ``bash`` block runs in one ``bash -e`` process (so ``|| test $? -eq N``
lines assert their exit codes, and ``wait`` the background traffic's), from a scratch working
directory that sees the repository's ``policies/``, ``blueprints/`` and ``.venv`` and nothing else
of it. A changed command in the README or a changed behaviour in mlctl fails this test.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def tour_block(readme: Path = REPO / "README.md") -> str:
    text = readme.read_text()
    section = text.split("## Quick tour", 1)[1]
    match = re.search(r"```bash\n(.*?)```", section, re.S)
    assert match, "README.md's Quick tour has no ```bash block"
    return match.group(1)


@dataclass
class TourRun:
    cwd: Path
    home: Path
    returncode: int
    log: str


@pytest.fixture(scope="module")
def tour(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TourRun]:
    from control_plane.local import processes

    cwd = tmp_path_factory.mktemp("tour")
    for name in ("policies", "blueprints", ".venv"):
        (cwd / name).symlink_to(REPO / name)
    script = cwd / "tour.sh"
    script.write_text("set -o pipefail\nset -x\n" + tour_block())
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MLCTL_") and k not in ("VIRTUAL_ENV", "NO_COLOR")}
    env["PYTHONPATH"] = str(REPO)  # this checkout's control_plane, whatever the venv was installed from
    env["MLCTL_EMULATOR_ENDPOINT"] = f"http://127.0.0.1:{processes.free_port()}"
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    home = cwd / ".mlctl"
    try:
        proc = subprocess.run(["bash", "-e", str(script)], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=900)
        yield TourRun(cwd, home, proc.returncode, proc.stdout + proc.stderr)
    finally:
        from tests.release.conftest import _stop_all

        subprocess.run([str(Path(sys.executable).parent / "mlctl"), "local", "down"], cwd=cwd,
                       env={**env, "MLCTL_HOME": str(home)}, capture_output=True, timeout=120)
        _stop_all(home)


def test_the_readme_tour_runs_as_written(tour: TourRun) -> None:
    assert tour.returncode == 0, tour.log[-6000:]
    # what the tour claims to show, shown
    assert re.search(r"export TRAIN_SHA256=[0-9a-f]{64}", tour.log), tour.log[-3000:]
    assert "registered digits:2+onnx" in tour.log or "digits:2+onnx" in tour.log
    assert "post-promotion inconclusive" in tour.log  # the first release paused, as the README says
    assert re.search(r"rollback rel-\S+: digits → digits:1 \(instant", tour.log), tour.log[-3000:]
    assert (tour.home / "trail.jsonl").is_file()


def test_the_tour_block_is_what_the_test_runs() -> None:
    block = tour_block()
    assert "mlctl sample" in block and "release rollback digits" in block
    assert "<hex>" not in block and "./digits-model" not in block  # no placeholders to fill in


def test_every_file_the_tour_wrote_under_its_home_is_private(tour: TourRun) -> None:
    """MLCTL_HOME 0700; the database, logs, keys, exports, served copies: no access for others."""
    assert tour.returncode == 0, tour.log[-3000:]
    assert tour.home.stat().st_mode & 0o777 == 0o700
    open_to_others = []
    checked = 0
    for path in [tour.home, *tour.home.rglob("*")]:
        if path.is_symlink():
            continue
        checked += 1
        if path.stat().st_mode & 0o077:
            open_to_others.append(f"{path.relative_to(tour.home)} {path.stat().st_mode & 0o777:o}")
    assert checked > 20  # the database, logs, keys, artifacts, served copies, the export
    assert (tour.home / "mlctl.db").stat().st_mode & 0o777 == 0o600
    assert (tour.home / "trail.jsonl").stat().st_mode & 0o777 == 0o600
    assert not open_to_others, open_to_others
