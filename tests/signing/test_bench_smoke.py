"""bench/signing.py runs end to end (on a tiny model) and reports every contender and ratio."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_runs_on_a_tiny_model(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "signing.py"),
            "--size-gb",
            "0.004",
            "--files",
            "3",
            "--repeat",
            "1",
            "--dir",
            str(tmp_path),
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    report = json.loads(out.stdout)
    assert report["model"] == {"dir": str(tmp_path / "model"), "bytes": 3 * 1_333_333, "files": 3}
    assert set(report["best_s"]) >= {
        "openssl dgst -sha256, parallel",
        "ours sign (lib)",
        "ours verify (lib)",
        "upstream CLI sign",
        "upstream CLI verify",
    }
    assert all(v > 0 for v in report["ratios_best"].values())
