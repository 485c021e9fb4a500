"""Benchmark: what a shadow release costs production's clients, and what its comparison costs.

    .venv/bin/python bench/shadow.py [--seconds 15] [--rate 150] [--percent 100] [--output json]

Two KServe model servers of the sample model (production on blue, a candidate on green) behind
the nginx gateway. A paced keep-alive request stream runs for ``--seconds`` with no mirror (the
baseline), then the same with ``--percent`` % mirrored to the candidate. Reported: client latency
p50/p99 in both runs and their ratio, failed requests (the acceptance is zero), how many copies
the candidate answered, and the time to read the window's request log and join/compare it, per
thousand pairs. Everything runs in a temporary $MLCTL_HOME on loopback ports and is cleaned up.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._report import add_output_flag, emit, percentile  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--rate", type=float, default=150.0, help="requests/s through the gateway")
    ap.add_argument("--percent", type=int, default=100, help="percent of requests mirrored")
    add_output_flag(ap)
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="mlctl-bench-shadow-"))
    os.environ["MLCTL_HOME"] = str(home)
    from control_plane.drivers import gateway
    from control_plane.drivers.base import Deployment
    from control_plane.drivers.local import LocalDriver
    from control_plane.release.analysis import Thresholds
    from control_plane.release.loadgen import LoadStream
    from control_plane.release.shadow import ShadowThresholds, compare
    from control_plane.samples import build_sample_model

    driver = LocalDriver()
    out: dict[str, Any] = {}
    try:
        models = {
            c: build_sample_model(home / "src" / v, variant=v) for c, v in (("blue", "v1"), ("green", "v2"))
        }
        gateway.up()
        for colour, m in models.items():
            driver.apply(
                "digits",
                colour,
                Deployment(
                    service="digits",
                    model_name="digits",
                    model_version=colour,
                    digest=f"sha256:{colour}",
                    release_id=f"bench-{colour}",
                    storage_uri=f"file://{m.path}",
                    local_path=m.path,
                ),
            )
        deadline = time.monotonic() + 120
        while not all(driver.ready("digits", c).ready for c in models):
            if time.monotonic() > deadline:
                raise SystemExit("model servers did not become ready")
            time.sleep(0.2)
        driver.set_traffic("digits", {"blue": 100})
        body = models["blue"].sample_request()

        def stream() -> tuple[list[float], int, int]:
            load = LoadStream(
                gateway.url(), "digits", body, rate=args.rate, threads=4, max_seconds=args.seconds
            ).start()
            time.sleep(args.seconds)
            stats = load.stop()
            return [s.latency for s in stats.samples if s.status == 200], stats.failed, stats.sent

        base_lat, base_failed, base_sent = stream()
        since = time.time()
        driver.set_mirror("digits", "green", args.percent)
        mirror_lat, mirror_failed, mirror_sent = stream()
        time.sleep(0.5)  # the last copies finish
        driver.clear_mirror("digits")

        t0 = time.perf_counter()
        records = driver.shadow_records("digits", since)
        t_read = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = compare(
            records, production="blue", candidate="green", thresholds=Thresholds(), shadow=ShadowThresholds()
        )
        t_compare = time.perf_counter() - t0
        pairs = max(1, result["comparison"]["joined"])
        out = {
            "rate": args.rate,
            "seconds": args.seconds,
            "mirror_percent": args.percent,
            "baseline": {
                "sent": base_sent,
                "failed": base_failed,
                "p50_ms": round(percentile(base_lat, 0.5) * 1000, 3),
                "p99_ms": round(percentile(base_lat, 0.99) * 1000, 3),
            },
            "mirrored": {
                "sent": mirror_sent,
                "failed": mirror_failed,
                "p50_ms": round(percentile(mirror_lat, 0.5) * 1000, 3),
                "p99_ms": round(percentile(mirror_lat, 0.99) * 1000, 3),
                "copies_answered": result["comparison"]["mirrored_requests"],
                "joined": result["comparison"]["joined"],
                "agreement": result["comparison"]["agreement"],
            },
            "p50_ratio": round(percentile(mirror_lat, 0.5) / percentile(base_lat, 0.5), 3),
            "p99_ratio": round(percentile(mirror_lat, 0.99) / percentile(base_lat, 0.99), 3),
            "read_log_ms_per_1000_pairs": round(t_read * 1000 * 1000 / pairs, 2),
            "compare_ms_per_1000_pairs": round(t_compare * 1000 * 1000 / pairs, 2),
        }
    finally:
        driver.remove_service("digits")
        gateway.down()
        shutil.rmtree(home, ignore_errors=True)

    b, m = out["baseline"], out["mirrored"]
    emit(out, args.output, [
        f"shadow mirroring at {out['rate']:.0f} requests/s for {out['seconds']:.0f} s, {out['mirror_percent']}% mirrored",
        f"  client latency without mirror: p50 {b['p50_ms']:.2f} ms  p99 {b['p99_ms']:.2f} ms  "
        f"({b['sent']} sent, {b['failed']} failed)",
        f"  client latency with mirror:    p50 {m['p50_ms']:.2f} ms  p99 {m['p99_ms']:.2f} ms  "
        f"({m['sent']} sent, {m['failed']} failed)",
        f"  ratio with/without: p50 {out['p50_ratio']:.2f}x  p99 {out['p99_ratio']:.2f}x",
        f"  candidate answered {m['copies_answered']} copies; {m['joined']} joined; agreement {m['agreement']}",
        f"  comparison cost per 1000 pairs: read log {out['read_log_ms_per_1000_pairs']:.1f} ms, "
        f"join+compare {out['compare_ms_per_1000_pairs']:.1f} ms",
    ])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
