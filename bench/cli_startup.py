"""Benchmark: how long `mlctl` takes to start, against a bare typer program started the same way.

    .venv/bin/python bench/cli_startup.py [--n 7] [--output json]

Each figure is the median wall time of ``--n`` fresh processes (``python -m control_plane ARGS``,
what the console script runs, in a temporary $MLCTL_HOME), for:
  mlctl --help, mlctl --version, mlctl audit --help, mlctl release status --help.
Baselines measured in the same run, the same way: ``python -c "import typer"`` (the floor of any
typer CLI) and a minimal typer program with one command group printing its ``--help`` (the floor
of rendering a help page); each ratio is ours over the help floor. The runs interleave (one of each,
then the next round) so a busy machine slows every figure alike.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._report import add_output_flag, emit  # noqa: E402  (after the repo is on the path)

MINIMAL_TYPER = """
import typer
app = typer.Typer(help="A minimal typer program.", no_args_is_help=True)
group = typer.Typer(help="One command group.")
@group.command()
def hello(name: str = "world") -> None:
    "Say hello."
app.add_typer(group, name="greet")
@app.callback()
def root() -> None:
    "Root."
app()
"""

OURS: dict[str, list[str]] = {
    "mlctl --help": ["--help"],
    "mlctl --version": ["--version"],
    "mlctl audit --help": ["audit", "--help"],
    "mlctl release status --help": ["release", "status", "--help"],
}
FLOORS: dict[str, list[str]] = {
    "import typer": ["-c", "import typer"],
    "minimal typer --help": ["-c", MINIMAL_TYPER, "--help"],
}


def _once(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, *argv], cwd=REPO, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)[:80]} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=7, help="fresh processes per command (median of them)")
    add_output_flag(parser)
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="mlctl-bench-startup-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLCTL_")}
    env.update(MLCTL_HOME=home, PYTHONPATH=str(REPO), COLUMNS="100")
    cases = {**{k: ["-m", "control_plane", *v] for k, v in OURS.items()}, **FLOORS}
    samples: dict[str, list[float]] = {k: [] for k in cases}
    for argv in cases.values():  # warm the file cache and bytecode once; not counted
        _once(argv, env)
    for _ in range(args.n):
        for name, argv in cases.items():
            samples[name].append(_once(argv, env))
    median = {k: round(statistics.median(v), 3) for k, v in samples.items()}
    floor = median["minimal typer --help"]
    result = {
        "n": args.n,
        "ours_s": {k: median[k] for k in OURS},
        "floor_s": {k: median[k] for k in FLOORS},
        "ratio": {k: round(median[k] / floor, 2) for k in OURS},
    }
    lines = [f"mlctl start-up, median of {args.n} fresh processes each (wall time)"]
    for k in OURS:
        lines.append(f"  {k:<30} {median[k]:>6.3f} s   {result['ratio'][k]:>5}x the help floor")
    for k in FLOORS:
        lines.append(f"  floor: {k:<23} {median[k]:>6.3f} s")
    emit(result, args.output, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
