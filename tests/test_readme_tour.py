"""The README's "Quick tour", extracted from README.md and run as written in a fresh home.

The tour's first fenced ``bash`` block runs in one ``bash -e`` process (so ``|| test $? -eq N``
lines assert their exit codes, and ``wait`` the background traffic's), from a scratch working
directory that sees the repository's ``policies/``, ``blueprints/`` and ``.venv`` and nothing else
of it. A changed command in the README or a changed behaviour in mlctl fails this test.
"""

from __future__ import annotations

import json
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
    from control_plane.emulator import processes

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

        subprocess.run([str(Path(sys.executable).parent / "mlctl"), "--as", "pat", "local", "down"], cwd=cwd,
                       env={**env, "MLCTL_HOME": str(home)}, capture_output=True, timeout=120)
        _stop_all(home)


def test_the_readme_tour_runs_as_written(tour: TourRun) -> None:
    assert tour.returncode == 0, tour.log[-6000:]
    # what the tour claims to show, shown
    assert re.search(r"export TRAIN_SHA256=[0-9a-f]{64}", tour.log), tour.log[-3000:]
    assert "registered digits:2+onnx" in tour.log or "digits:2+onnx" in tour.log
    assert "post-promotion inconclusive" in tour.log  # the first release paused, as the README says
    assert re.search(r"rollback rel-\S+: digits → digits:1 \((instant|redeploy)", tour.log), tour.log[-3000:]
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
        if path.is_symlink() or path == tour.home / "roles.yaml":  # the user's own `cp`, not mlctl's
            continue
        if path.parent == tour.home / "ca" and path.suffix == ".pem":
            continue  # the local CA's certificates are public by design (clients trust ca.pem); keys stay 0600
        checked += 1
        if path.stat().st_mode & 0o077:
            open_to_others.append(f"{path.relative_to(tour.home)} {path.stat().st_mode & 0o777:o}")
    assert checked > 20  # the database, logs, keys, artifacts, served copies, the export
    assert (tour.home / "mlctl.db").stat().st_mode & 0o777 == 0o600
    assert (tour.home / "trail.jsonl").stat().st_mode & 0o777 == 0o600
    assert not open_to_others, "\n".join(open_to_others)


def _mlctl(tour: TourRun, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLCTL_") and k != "NO_COLOR"}
    env.update(PYTHONPATH=str(REPO), MLCTL_HOME=str(tour.home))
    return subprocess.run([str(Path(sys.executable).parent / "mlctl"), *args], cwd=tour.cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def _documented_keys() -> dict[str, set[str]]:
    """docs/cli.md's schema table: | `view` | `key`, `key`, ... |"""
    keys: dict[str, set[str]] = {}
    for line in (REPO / "docs" / "cli.md").read_text().splitlines():
        m = re.match(r"^\| `(mlctl [^`]+)` \| (.+) \|$", line)
        if m:
            keys[m.group(1)] = set(re.findall(r"`([a-z_]+)`", m.group(2)))
    return keys


def test_views_after_the_tour_have_the_documented_json_keys(tour: TourRun) -> None:
    assert tour.returncode == 0, tour.log[-3000:]
    docs = _documented_keys()
    views = {
        "mlctl model list -o json": ("model", "list", "-o", "json"),
        "mlctl model show NAME:V -o json": ("model", "show", "digits:2", "-o", "json"),
        "mlctl release list -o json": ("release", "list", "-o", "json"),
        "mlctl release history SERVICE -o json": ("release", "history", "digits", "-o", "json"),
        "mlctl release status SERVICE -o json": ("release", "status", "digits", "-o", "json"),
        "mlctl audit list -o json": ("--as", "ali", "audit", "list", "--model", "digits", "-o", "json"),
    }
    for view, args in views.items():
        proc = _mlctl(tour, *args)
        assert view in docs, f"docs/cli.md does not document {view}"
        data = json.loads(proc.stdout)
        item = data[0] if isinstance(data, list) else data
        if view.startswith("mlctl audit"):  # the audit log's entry may grow (issue 11's Merkle log)
            assert docs[view] <= set(item), f"{view}: {sorted(docs[view] - set(item))}"
        else:
            assert set(item) == docs[view], f"{view}: {sorted(set(item) ^ docs[view])}"
        for key, value in item.items():
            if key.endswith("_at") or key == "ts":
                assert value is None or re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)$", value), (key, value)


def test_status_after_local_down_says_the_runtime_is_not_serving(tour: TourRun) -> None:
    proc = _mlctl(tour, "release", "status", "digits", "-o", "json")
    assert proc.returncode == 13, proc.stdout + proc.stderr  # the tour ended with `mlctl local down`
    view = json.loads(proc.stdout)
    assert view["state"] == "DONE" and view["runtime"]["serving"] is False
    proc = _mlctl(tour, "release", "history", "digits")
    assert "ROLLED_BACK" not in proc.stdout and proc.stdout.count("DONE") == 3
    proc = _mlctl(tour, "model", "show", "digits:2")
    assert "derived: digits:2+onnx" in proc.stdout and "siblings: digits:1" in proc.stdout
    assert "uae-local: amira" in proc.stdout


def test_piped_output_keeps_digests_whole_and_has_no_markup(tour: TourRun) -> None:
    proc = _mlctl(tour, "model", "list")
    digests = re.findall(r"sha256:[0-9a-f]+", proc.stdout)
    assert digests and all(len(d) == len("sha256:") + 64 for d in digests), proc.stdout
    assert "…" not in proc.stdout and "\x1b[" not in proc.stdout and "[bold" not in proc.stdout
    for line in proc.stdout.splitlines():
        if "sha256:" in line:
            assert "digits" in line  # one row per line: nothing wrapped onto the next
    proc = _mlctl(tour, "--no-color", "release", "history", "digits")
    assert "\x1b[" not in proc.stdout
