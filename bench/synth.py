"""Full-blueprint synth time against its floor: importing the provider bindings the stacks use plus
an empty ``App().synth()``, measured in the same run, each in a fresh interpreter.

    .venv/bin/python bench/synth.py [--blueprint blueprints/uae-local.yaml] [--repeat 3]

The ratio says how much of a synth is our composition versus jsii/provider start-up we cannot cut.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def used_submodules() -> list[str]:
    """Every provider sub-module the constructs and stacks load through ``aws("...")``."""
    names: set[str] = set()
    for path in [*REPO.glob("modules/aws/*.py"), *REPO.glob("stacks/*.py")]:
        names.update(re.findall(r'aws\("([a-z0-9_]+)"\)', path.read_text()))
    return sorted(names)


BASELINE = """
import importlib, sys
from modules.cdk import App
for name in {mods!r}:
    importlib.import_module("cdktf_cdktf_provider_aws." + name)
App(outdir=sys.argv[1]).synth()
"""


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"bench step failed: {' '.join(argv[:3])}\n{proc.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blueprint", default=str(REPO / "blueprints" / "uae-local.yaml"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = parser.parse_args()

    env = dict(os.environ, JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20,22")
    mods = used_submodules()
    baseline, full = [], []
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as tmp:
        for i in range(args.repeat):
            # Interleaved, so drift in machine load hits both sides alike.
            out_a, out_b = Path(tmp, f"empty-{i}"), Path(tmp, f"full-{i}")
            baseline.append(timed([sys.executable, "-c", BASELINE.format(mods=mods), str(out_a)], env))
            full.append(timed([sys.executable, "-m", "stacks"],
                              dict(env, BLUEPRINT=args.blueprint, CDKTF_OUTDIR=str(out_b))))
            stacks = len(json.loads(Path(out_b, "manifest.json").read_text())["stacks"])
    b, f = statistics.median(baseline), statistics.median(full)
    result = {
        "blueprint": Path(args.blueprint).name,
        "repeat": args.repeat,
        "provider_submodules": len(mods),
        "stacks": stacks,
        "baseline_import_plus_empty_synth_s": round(b, 2),
        "full_blueprint_synth_s": round(f, 2),
        "ratio_full_over_baseline": round(f / b, 2),
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"blueprint            {result['blueprint']} ({stacks} stacks, {len(mods)} provider sub-modules)")
    print(f"baseline (import + empty synth)  median {b:6.2f} s   runs {', '.join(f'{x:.2f}' for x in baseline)}")
    print(f"full blueprint synth             median {f:6.2f} s   runs {', '.join(f'{x:.2f}' for x in full)}")
    print(f"ratio full / baseline            {f / b:.2f}x")


if __name__ == "__main__":
    main()
