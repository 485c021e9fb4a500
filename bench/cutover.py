"""Benchmark: blue-green switch latency at the gateway, and release time-to-live, in one run.

    .venv/bin/python bench/cutover.py [--switches 20] [--rate 250] [--output json]

1. Model server start time (the baseline): a KServe model server process for the sample model,
   from spawn to ``/v2/models/{m}/ready``, measured for both colours.
2. Switch latency: with a steady request stream through the nginx gateway, flip 100 % of the
   traffic between the two ready colours ``--switches`` times. Latency = from the decision (the
   driver call) until every later request is answered by the new colour (``X-Served-By``).
   Reported p50/p99; goal p50 < 1 s. Every request is counted: the bench reports how many of
   them failed across all the switches and releases (the acceptance is zero).
3. Release time-to-live: ``mlctl release`` of the sample model (blue-green, all gates, smoke and
   a short pre-promotion analysis) from start to SWITCHED (serving production) and to DONE,
   shown next to the model server's own start time as a ratio.

Everything runs in a temporary $MLCTL_HOME on loopback ports and is cleaned up.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--switches", type=int, default=20)
    ap.add_argument("--rate", type=float, default=250.0, help="requests/s through the gateway")
    ap.add_argument("--gap", type=float, default=1.0, help="seconds between switches")
    ap.add_argument("--output", choices=["table", "json"], default="table")
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="mlctl-bench-cutover-"))
    os.environ["MLCTL_HOME"] = str(home)
    from control_plane import demo

    demo.prepare_identities(home)
    src = demo.build_and_register(home, quiet=True)
    from control_plane.drivers import gateway
    from control_plane.drivers.base import Deployment
    from control_plane.drivers.local import LocalDriver
    from control_plane.release import Engine, ReleaseConfig
    from control_plane.release.analysis import Thresholds
    from control_plane.release.loadgen import LoadStream, switch_latency

    driver = LocalDriver()
    results: dict[str, object] = {}
    try:
        gateway.up()
        # 1. baseline: the model server's own start time, per colour.
        starts = {}
        for colour, variant in (("blue", "v1"), ("green", "v2")):
            dep = Deployment(
                service="bench",
                model_name="digits",
                model_version=variant,
                digest=f"bench-{variant}",
                release_id=f"bench-{colour}",
                storage_uri=f"file://{src[variant]}",
                local_path=src[variant],
            )
            t0 = time.monotonic()
            driver.apply("bench", colour, dep)
            while not driver.ready("bench", colour).ready:
                time.sleep(0.02)
            starts[colour] = time.monotonic() - t0
        driver.set_traffic("bench", {"blue": 100})
        addr = {c: driver.endpoint("bench", c).removeprefix("http://") for c in ("blue", "green")}

        # 2. switch latency under load.
        body = json.loads((src["v1"] / "sample_input.json").read_text())
        load = LoadStream(
            gateway.url(), "bench", body, rate=args.rate, threads=8, max_requests=10**6, max_seconds=600
        ).start()
        load.wait_for(int(args.rate), timeout=30)
        latencies, calls = [], []
        live = "blue"
        decisions = []
        for _ in range(args.switches):
            target = "green" if live == "blue" else "blue"
            t0 = time.monotonic()
            driver.set_traffic("bench", {target: 100, live: 0})
            calls.append(time.monotonic() - t0)
            decisions.append((t0, target))
            live = target
            time.sleep(args.gap)
        # 3. release time-to-live, under the same stream (on its own service).
        marks: dict[str, float] = {}
        eng = Engine(driver, hooks=_hooks(marks))
        cfg = ReleaseConfig(
            analysis_window=1,
            scale_down_delay=0,
            pre_analysis_requests=20,
            thresholds=Thresholds(min_requests=0),
        )
        ttl = []
        for version in ("1", "2"):
            marks.clear()
            t0 = time.monotonic()
            rid = eng.start(model_name="digits", version=version, env_name="uae-local", config=cfg)
            row = eng.run(rid)
            if row.state != "DONE":
                raise SystemExit(f"release {rid} ended {row.state}: {row.reasons}")
            ttl.append(
                {
                    "version": version,
                    "to_switched": marks["SWITCHED"] - t0,
                    "to_done": time.monotonic() - t0,
                    "green_ready": marks["GREEN_READY"] - marks["GREEN_APPLIED"],
                }
            )
        load.wait_for(10_000, timeout=120)  # the acceptance counts losses over at least 10,000 requests
        stats = load.stop()
        for i, (t0, target) in enumerate(decisions):
            until = decisions[i + 1][0] if i + 1 < len(decisions) else t0 + args.gap
            lat = switch_latency(stats.samples, t0, addr[target], until=until)
            if lat is not None:
                latencies.append(lat)
        server_start = statistics.mean(starts.values())
        results = {
            "model_server_start_s": {c: round(v, 3) for c, v in starts.items()},
            "switch_latency_s": {
                "n": len(latencies),
                "p50": round(_pct(latencies, 0.5), 4),
                "p99": round(_pct(latencies, 0.99), 4),
                "max": round(max(latencies), 4),
            },
            "set_traffic_call_s": {"p50": round(_pct(calls, 0.5), 4), "p99": round(_pct(calls, 0.99), 4)},
            "release_ttl_s": [
                {k: (round(v, 3) if isinstance(v, float) else v) for k, v in t.items()} for t in ttl
            ],
            "ttl_to_switched_over_server_start": round(
                statistics.mean(t["to_switched"] for t in ttl) / server_start, 2
            ),
            "requests": {
                "sent": stats.sent,
                "failed": stats.failed,
                "rate_per_s": round(load.achieved_rate, 1),
                "failures": _failures(stats, decisions),
            },
            "goal_switch_p50_under_1s": _pct(latencies, 0.5) < 1.0,
        }
    finally:
        driver.remove_service("bench")
        driver.remove_service("digits")
        driver.stop_all()
        gateway.down()
        shutil.rmtree(home, ignore_errors=True)
    if args.output == "json":
        print(json.dumps(results, indent=2))
    else:
        _print(results)
    ok = results.get("goal_switch_p50_under_1s") and results["requests"]["failed"] == 0  # type: ignore[index]
    return 0 if ok else 1


def _failures(stats, decisions) -> list[str]:
    """What each failed request was, and when relative to the nearest switch (for diagnosis)."""
    out = []
    for s in stats.samples:
        if s.status != 200:
            near = min((s.t - t0 for t0, _ in decisions), key=abs, default=float("nan"))
            out.append(f"status {s.status or 'transport error'} {near * 1000:+.0f} ms from a switch")
    return out[:20] + stats.errors[:5]


def _hooks(marks: dict[str, float]):
    from control_plane.release.engine import Hooks

    def on(_rid: str, state: str, phase: str) -> None:
        if phase == "done":
            marks.setdefault(state, time.monotonic())

    return Hooks(on_transition=on)


def _print(r: dict) -> None:
    s, start = r["switch_latency_s"], r["model_server_start_s"]
    print("cutover bench (local runtime: KServe model servers + nginx gateway, loopback)")
    print(f"  model server start (baseline):  blue {start['blue']:.2f} s, green {start['green']:.2f} s")
    print(
        f"  switch latency over {s['n']} switches: p50 {s['p50'] * 1000:.0f} ms, p99 {s['p99'] * 1000:.0f} ms, "
        f"max {s['max'] * 1000:.0f} ms   (goal p50 < 1 s: {'met' if r['goal_switch_p50_under_1s'] else 'MISSED'})"
    )
    print(
        f"  set_traffic call (rewrite + nginx -t + reload + confirm): p50 {r['set_traffic_call_s']['p50'] * 1000:.0f} ms"
    )
    for t in r["release_ttl_s"]:
        print(
            f"  release digits:{t['version']}: serving at {t['to_switched']:.2f} s, DONE at {t['to_done']:.2f} s "
            f"(candidate start→ready {t['green_ready']:.2f} s)"
        )
    print(f"  release time-to-serve / model server start: {r['ttl_to_switched_over_server_start']:.2f}x")
    q = r["requests"]
    print(f"  requests through the gateway: {q['sent']} at {q['rate_per_s']:.0f}/s, failed {q['failed']}")
    for line in q["failures"]:
        print(f"    {line}")


if __name__ == "__main__":
    raise SystemExit(main())
