"""``make demo-infra``: the local infrastructure flow, through the real ``mlctl`` commands.

AWS emulator up → policy check → bootstrap the state backend → apply every stack with real
terraform → drift (none) → destroy → emulator down. Runs in a temporary ``$MLCTL_HOME`` on a free
loopback port unless ``MLCTL_HOME`` / ``MLCTL_EMULATOR_ENDPOINT`` are set, and always cleans up.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from control_plane.emulator.processes import free_port
from control_plane.output import console
from control_plane.settings import DEFAULT_BLUEPRINT
from control_plane.settings import current as settings


def _mlctl(*args: str, env: dict[str, str]) -> float:
    console.print(f"[bold cyan]$ mlctl {' '.join(args)}[/]")
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "control_plane", *args], env=env, check=False)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"demo-infra: `mlctl {' '.join(args)}` failed with exit code {result.returncode}")
    return elapsed


def main() -> int:
    blueprint = str(DEFAULT_BLUEPRINT)
    # The mlctl child processes get their settings through their environment (a copy of ours):
    # a temporary home, a free emulator port and the platform admin, unless ours say otherwise.
    ours = settings()
    env = dict(os.environ)
    tmp = None
    home = ours.home
    if home is None:
        tmp = tempfile.TemporaryDirectory(prefix="mlctl-demo-infra-")
        home = Path(tmp.name)
    env["MLCTL_HOME"] = str(home)
    env["MLCTL_EMULATOR_ENDPOINT"] = ours.emulator_endpoint or f"http://127.0.0.1:{free_port()}"
    env["MLCTL_ACTOR"] = ours.actor or "pat"
    roles = home / "roles.yaml"
    if not roles.exists():
        roles.parent.mkdir(parents=True, exist_ok=True)
        roles.write_text("actors:\n  pat: [platform-admin]\n")
    timings: dict[str, float] = {}
    try:
        timings["local up"] = _mlctl("local", "up", "--blueprint", blueprint, env=env)
        timings["check"] = _mlctl("infra", "check", "--blueprint", blueprint, env=env)
        timings["bootstrap"] = _mlctl("infra", "bootstrap", "--blueprint", blueprint, env=env)
        timings["apply"] = _mlctl("infra", "apply", "--blueprint", blueprint, "--no-synth", env=env)
        timings["drift"] = _mlctl("infra", "drift", "--blueprint", blueprint, "--no-synth", env=env)
        timings["destroy"] = _mlctl("infra", "destroy", "--blueprint", blueprint, "--no-synth", "--yes", env=env)
    finally:
        subprocess.run([sys.executable, "-m", "control_plane", "local", "down"], env=env, check=False,
                       capture_output=True)
        if tmp is not None:
            tmp.cleanup()
    console.print("\n[bold green]demo-infra done[/]: " + ", ".join(f"{k} {v:.0f}s" for k, v in timings.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
