"""`mlctl release status SERVICE --watch` follows a real release on the local runtime to its end,
and its exit code is the state's (0 DONE and serving, 10 rolled back)."""

from __future__ import annotations

import subprocess
import time

from tests.cli_runner import Result, run_mlctl, start_mlctl
from tests.release.helpers import FAST
from tests.release.test_crash_resume import _intent_recorded


def _watch(*extra: str) -> Result:
    return run_mlctl("release", "status", "digits", "--watch", "--interval", "0.3", "--timeout", "240", *extra,
                     timeout=300)


def _start_held(ref: str, hold: str) -> subprocess.Popen[bytes]:
    """Start a release that pauses a few seconds after recording ``hold``'s intent (a slow step)."""
    proc = start_mlctl(
        "release", ref, *FAST, env={"MLCTL_RELEASE_HOLD_AT": hold}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    state = hold.split(":", 1)[0]
    deadline = time.monotonic() + 90
    while not _intent_recorded(state, ""):
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else proc.returncode
        assert time.monotonic() < deadline, f"the release never reached {state}"
        time.sleep(0.05)
    return proc


def test_watch_follows_a_release_to_done_and_exits_0(world):
    # Held 20 s: a watch process takes several seconds to start on a loaded machine, and with a
    # shorter hold it saw only the end state (the assertion on the refreshes then failed).
    proc = _start_held("digits:1", "GREEN_APPLIED:20")
    try:
        assert proc.poll() is None  # the watch starts while the release is in progress
        res = _watch()
    finally:
        proc.wait(timeout=240)
    assert proc.returncode == 0, proc.stderr.read().decode() if proc.stderr else ""
    assert res.returncode == 0, res.stdout + res.stderr
    progress = res.stdout + res.stderr
    # Refreshed while it ran (piped: one line per refresh, not a cleared screen), then the end state.
    assert "→ GREEN_READY" in progress or "→ GREEN_APPLIED" in progress, progress
    assert "DONE" in progress and "1 ready on blue" in progress, progress  # and the runtime checked


def test_watch_of_a_finished_release_returns_at_once_with_its_state(world):
    proc = _start_held("digits:1", "GREEN_APPLIED:1")
    proc.wait(timeout=240)
    assert proc.returncode == 0
    started = time.monotonic()
    res = _watch("--output", "json")
    assert res.returncode == 0 and time.monotonic() - started < 60, res.stderr
    assert '"state": "DONE"' in res.stdout or '"state":"DONE"' in res.stdout, res.stdout
