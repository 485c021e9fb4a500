"""Benchmark: the local gateway's switch latency, overhead and TLS cost, and release time-to-live.

    .venv/bin/python bench/cutover.py [--switches 20] [--rate 250] [--seconds 5] [--haproxy] [--output json]

Everything is measured in one run, each figure next to a baseline measured in the same run:

1. Model server start time: a KServe model server process, spawn to ``/v2/models/{m}/ready``.
2. Switch latency under a steady stream of keep-alive TLS requests through the gateway (its own
   process, as a client is): flip 100 % of the traffic between two ready colours ``--switches``
   times. Latency = from the decision (the driver call) until every later request is answered
   by the new colour (``X-Served-By``); goal p50 < 10 ms. Its resolution is the stream's request
   interval, so the time until nginx had the new route (``in_force_after_s``) is shown too. Baseline: what the previous gateway paid per switch,
   an nginx graceful reload (``nginx -t`` + SIGHUP until only new workers accept), timed on
   the same nginx. Every request is counted (the acceptance is zero failed).
3. Gateway overhead: throughput at saturation (closed loop, ``--clients`` keep-alive clients,
   ``--seconds`` each) calling a model server directly vs through the gateway, REST and gRPC,
   as a ratio. Rounds are interleaved so a busy machine hurts both sides alike.
4. TLS cost: gateway throughput over TLS vs over a plain-HTTP listener (bench only), and the
   latency of a request on a new connection (TCP + TLS handshake) vs on a kept-alive one.
5. Release time-to-live: ``mlctl release`` (blue-green, all gates) start to SWITCHED and DONE.
6. With ``--haproxy`` (Debian ``haproxy``): the same switch-latency and overhead measurements
   through HAProxy 2.6 (runtime API ``set server ... weight``), the alternative we compared.

Everything runs in a temporary $MLCTL_HOME on loopback ports and is cleaned up.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._report import percentile  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--switches", type=int, default=20)
    ap.add_argument("--rate", type=float, default=250.0, help="requests/s through the gateway")
    ap.add_argument("--gap", type=float, default=0.5, help="seconds between switches")
    ap.add_argument("--seconds", type=float, default=5.0, help="length of each saturation round")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved saturation rounds per target")
    ap.add_argument("--clients", type=int, default=8, help="concurrent clients at saturation")
    ap.add_argument("--haproxy", action="store_true", help="also measure HAProxy (the alternative)")
    ap.add_argument("--no-release", action="store_true", help="skip the release time-to-live part")
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
    from control_plane.emulator import processes
    from control_plane.release.loadgen import GrpcLoadStream, LoadStream, switch_latency

    driver = LocalDriver()
    results: dict[str, object] = {}
    haproxy: subprocess.Popen[bytes] | None = None
    try:
        plain_port = processes.free_port()
        gateway.up(bench_plain_port=plain_port)
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
        addr = {c: driver.server_address("bench", c) for c in ("blue", "green")}
        body = json.loads((src["v1"] / "sample_input.json").read_text())

        # 2. switch latency under load (keep-alive TLS clients).
        load = _ProcessLoad(
            gateway.url(), "bench", body, rate=args.rate, threads=8, max_requests=10**6, max_seconds=900
        ).start()
        load.wait_for(int(args.rate), timeout=30)
        calls, decisions, in_force = [], [], []
        live = "blue"
        for _ in range(args.switches):
            target = "green" if live == "blue" else "blue"
            t0 = time.monotonic()
            driver.set_traffic("bench", {target: 100, live: 0})
            calls.append(time.monotonic() - t0)
            in_force.append(gateway.last_in_force - t0)
            decisions.append((t0, target))
            live = target
            time.sleep(args.gap)

        # 5. release time-to-live, under the same stream (on its own service).
        ttl = [] if args.no_release else _release_ttl(driver)
        load.wait_for(10_000, timeout=120)  # losses are counted over at least 10,000 requests
        stats = load.stop()
        latencies = []
        for i, (t0, target) in enumerate(decisions):
            until = _until(decisions, i, args.gap)
            lat = switch_latency(stats.samples, t0, addr[target], until=until)
            if lat is not None:
                latencies.append(lat)
        reloads = _reload_baseline(gateway, n=min(args.switches, 10))
        driver.set_traffic("bench", {"blue": 100, "green": 0})

        # 3 + 4. saturation throughput: direct vs gateway (TLS, plain), REST and gRPC.
        rest_targets = {
            "direct": f"http://{addr['blue']}",
            "gateway_tls": gateway.url(),
            "gateway_plain": f"http://127.0.0.1:{plain_port}",
        }
        grpc_targets = {
            "direct": (driver.grpc_address("bench", "blue"), False),
            "gateway_tls": (gateway.grpc_target(), True),
        }
        if args.haproxy:
            haproxy, hap = _haproxy_up(home, addr)
            rest_targets["haproxy_tls"] = hap["url"]
        sat: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            for name, url in rest_targets.items():
                s = _saturate(LoadStream, url, body, args)
                sat.setdefault(f"rest_{name}", []).append(s)
            for name, (target, tls) in grpc_targets.items():
                s = _saturate(GrpcLoadStream, target, body, args, tls=tls)
                sat.setdefault(f"grpc_{name}", []).append(s)
        best = {k: max(v) for k, v in sat.items()}
        handshake = _new_connection_cost(LoadStream, gateway.url(), f"http://127.0.0.1:{plain_port}", body)

        hap_switch = None
        if haproxy is not None:
            hap_switch = _haproxy_switches(hap, body, args, switch_latency)

        server_start = statistics.mean(starts.values())
        p50 = percentile(latencies, 0.5)
        results = {
            "model_server_start_s": {c: round(v, 3) for c, v in starts.items()},
            "switch_latency_s": {
                "n": len(latencies),
                "p50": round(p50, 4),
                "p99": round(percentile(latencies, 0.99), 4),
                "max": round(max(latencies), 4) if latencies else None,
            },
            "set_traffic_call_s": {"p50": round(percentile(calls, 0.5), 4), "p99": round(percentile(calls, 0.99), 4)},
            "in_force_after_s": {"p50": round(percentile(in_force, 0.5), 4), "p99": round(percentile(in_force, 0.99), 4)},
            "baseline_nginx_reload_s": {"p50": round(percentile(reloads, 0.5), 4), "p99": round(percentile(reloads, 0.99), 4)},
            "reload_over_switch_p50": round(percentile(reloads, 0.5) / p50, 1) if p50 > 0 else None,
            "saturation_rps": {k: round(v, 1) for k, v in best.items()},
            "gateway_over_direct": {
                "rest": round(best["rest_gateway_tls"] / best["rest_direct"], 3),
                "grpc": round(best["grpc_gateway_tls"] / best["grpc_direct"], 3),
            },
            "tls": {
                "throughput_tls_over_plain": round(best["rest_gateway_tls"] / best["rest_gateway_plain"], 3),
                **handshake,
            },
            "release_ttl_s": [
                {k: (round(v, 3) if isinstance(v, float) else v) for k, v in t.items()} for t in ttl
            ],
            "ttl_to_switched_over_server_start": (
                round(statistics.mean(t["to_switched"] for t in ttl) / server_start, 2) if ttl else None
            ),
            "requests": {
                "sent": stats.sent,
                "failed": stats.failed,
                "rate_per_s": round(load.achieved_rate, 1),
                "connections": load.connections,
                "failures": _failures(stats, decisions),
            },
            "goal_switch_p50_under_10ms": p50 < 0.010,
        }
        if hap_switch is not None:
            results["haproxy"] = {
                **hap_switch,
                "rest_over_direct": round(best["rest_haproxy_tls"] / best["rest_direct"], 3),
            }
    finally:
        if haproxy is not None:
            haproxy.terminate()
            haproxy.wait(timeout=10)
        driver.remove_service("bench")
        driver.remove_service("digits")
        driver.stop_all()
        gateway.down()
        shutil.rmtree(home, ignore_errors=True)
    if args.output == "json":
        print(json.dumps(results, indent=2))
    else:
        _print(results)
    ok = results.get("goal_switch_p50_under_10ms") and results["requests"]["failed"] == 0  # type: ignore[index]
    return 0 if ok else 1


class _ProcessLoad:
    """A LoadStream in a child process, as a real client is: its threads then do not compete
    with the switching code for this interpreter's GIL. CLOCK_MONOTONIC is system-wide, so the
    child's sample times compare with this process's decision times."""

    def __init__(self, *args, **kw) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("fork")
        self._stop, self._count = ctx.Event(), ctx.Value("i", 0)
        self._recv, send = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=_child, args=(args, kw, self._stop, self._count, send), daemon=True)
        self.achieved_rate = 0.0
        self.connections = 0

    def start(self):
        self._proc.start()
        return self

    def wait_for(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self._count.value < count and time.monotonic() < deadline and self._proc.is_alive():
            time.sleep(0.05)

    def stop(self):
        from control_plane.release.loadgen import LoadStats, Sample

        self._stop.set()
        samples, errors, self.achieved_rate, self.connections = self._recv.recv()
        self._proc.join(timeout=30)
        return LoadStats(samples=[Sample(*x) for x in samples], errors=errors)


def _child(args, kw, stop, count, send) -> None:
    from control_plane.release.loadgen import LoadStream

    stream = LoadStream(*args, **kw).start()
    while not stop.is_set():
        count.value = stream.stats.sent
        time.sleep(0.05)
    stats = stream.stop()
    samples = [(x.t, x.status, x.served_by, x.latency) for x in stats.samples]
    send.send((samples, stats.errors[:20], stream.achieved_rate, stream.connections))


def _until(decisions, i: int, gap: float) -> float:
    """End of switch ``i``'s window: a little before the next decision, since a request sent
    just before that decision may reach the gateway after it, and rightly go to the next colour
    (without the margin it would count as the previous switch taking the whole gap)."""
    end = decisions[i + 1][0] if i + 1 < len(decisions) else decisions[i][0] + gap
    return end - min(0.1, gap / 4)


def _saturate(cls, url, body, args, tls: bool = True) -> float:
    """Requests/s with ``--clients`` closed-loop keep-alive clients for ``--seconds``."""
    stream = cls(url, "bench", body, rate=1e9, threads=args.clients, max_requests=10**7,
                 max_seconds=args.seconds, tls=tls).start()
    time.sleep(0.5)
    start_count, t0 = stream.stats.sent, time.monotonic()
    time.sleep(max(0.5, args.seconds - 1.0))
    done, t1 = stream.stats.sent, time.monotonic()
    stats = stream.stop()
    if stats.failed:
        raise SystemExit(f"saturation run against {url} had {stats.failed} failures: {stats.errors[:3]}")
    return (done - start_count) / (t1 - t0)


def _new_connection_cost(cls, tls_url, plain_url, body) -> dict[str, float]:
    """Median latency of a request on a new connection vs a kept-alive one, TLS and plain."""
    out = {}
    for name, url in (("tls", tls_url), ("plain", plain_url)):
        for keep in (True, False):
            s = cls(url, "bench", body, rate=50, threads=1, max_requests=150, max_seconds=30, keepalive=keep)
            s.start().wait_for(150, timeout=30)
            st = s.stop()
            lat = [x.latency for x in st.samples[20:] if x.status == 200]
            out[f"{name}_{'keepalive' if keep else 'new_connection'}_ms"] = round(statistics.median(lat) * 1000, 2)
    out["tls_handshake_ms"] = round(out["tls_new_connection_ms"] - out["tls_keepalive_ms"], 2)
    return out


def _reload_baseline(gateway, n: int) -> list[float]:
    """The previous gateway's per-switch cost: nginx -t, SIGHUP, until only new workers accept."""
    pid = gateway.status().pid
    out = []
    for _ in range(n):
        before = _children(pid)
        t0 = time.monotonic()
        test = gateway._nginx("-t", "-q")
        if test.returncode != 0:
            raise SystemExit(test.stderr)
        os.kill(pid, signal.SIGHUP)
        while True:
            now = _children(pid)
            if now and not (now & before):
                break
            time.sleep(0.002)
        out.append(time.monotonic() - t0)
        time.sleep(0.2)
    return out


def _children(master: int) -> set[int]:
    kids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == master:
                kids.add(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return kids


def _release_ttl(driver) -> list[dict[str, object]]:
    from control_plane.release import Engine, ReleaseConfig
    from control_plane.release.analysis import Thresholds

    marks: dict[str, float] = {}
    eng = Engine(driver, hooks=_hooks(marks))
    cfg = ReleaseConfig(
        analysis_window=1, scale_down_delay=0, pre_analysis_requests=20, thresholds=Thresholds(min_requests=0)
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
    return ttl


# -- HAProxy, the alternative ------------------------------------------------------------------


def _haproxy_up(home: Path, addr: dict[str, str]):
    from control_plane.emulator import ca, processes

    exe = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(exe).exists():
        raise SystemExit("--haproxy needs HAProxy (apt-get install haproxy)")
    tls = ca.ensure()
    root = home / "haproxy"
    root.mkdir(mode=0o700)
    pem = root / "server.pem"
    pem.write_bytes(tls.server_cert.read_bytes() + tls.server_key.read_bytes())
    pem.chmod(0o600)
    port = processes.free_port()
    sock = root / "admin.sock"
    conf = root / "haproxy.cfg"
    conf.write_text(f"""global
    stats socket {sock} mode 600 level admin
    nbthread 1
defaults
    mode http
    timeout connect 5s
    timeout client 75s
    timeout server 60s
    timeout http-keep-alive 75s
    option http-keep-alive
    retries 1
    option redispatch
frontend fe
    bind 127.0.0.1:{port} ssl crt {pem} alpn h2,http/1.1
    http-response set-header X-Served-By %[srv_name]
    default_backend be
backend be
    balance random
    http-reuse always
    server blue {addr['blue']} weight 100
    server green {addr['green']} weight 0
""")
    proc = subprocess.Popen([exe, "-f", str(conf), "-db"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    processes.wait_for_port("127.0.0.1", port, timeout=15, name="haproxy (bench)")
    return proc, {"url": f"https://127.0.0.1:{port}", "socket": sock}


def _haproxy_cmd(sock: Path, cmd: str) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(sock))
        s.sendall(cmd.encode() + b"\n")
        chunks = []
        while data := s.recv(4096):
            chunks.append(data)
    return b"".join(chunks).decode()


def _haproxy_switches(hap, body, args, switch_latency) -> dict[str, object]:
    """Switch latency through HAProxy: two runtime-API weight changes per switch."""
    load = _ProcessLoad(hap["url"], "bench", body, rate=args.rate, threads=8, max_requests=10**6, max_seconds=300).start()
    load.wait_for(int(args.rate), timeout=30)
    decisions, calls = [], []
    live = "blue"
    for _ in range(args.switches):
        target = "green" if live == "blue" else "blue"
        t0 = time.monotonic()
        _haproxy_cmd(hap["socket"], f"set server be/{target} weight 100; set server be/{live} weight 0")
        calls.append(time.monotonic() - t0)
        decisions.append((t0, target))
        live = target
        time.sleep(args.gap)
    stats = load.stop()
    lat = []
    for i, (t0, target) in enumerate(decisions):
        x = switch_latency(stats.samples, t0, target, until=_until(decisions, i, args.gap))  # server name
        if x is not None:
            lat.append(x)
    return {
        "switch_latency_s": {"n": len(lat), "p50": round(percentile(lat, 0.5), 4), "p99": round(percentile(lat, 0.99), 4)},
        "runtime_api_call_s": {"p50": round(percentile(calls, 0.5), 4)},
        "requests": {"sent": stats.sent, "failed": stats.failed},
    }


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
    base = r["baseline_nginx_reload_s"]
    print("cutover bench (local runtime: KServe model servers + nginx/Lua gateway, TLS, loopback)")
    print(f"  model server start:  blue {start['blue']:.2f} s, green {start['green']:.2f} s")
    print(
        f"  switch latency over {s['n']} switches: p50 {s['p50'] * 1000:.1f} ms, p99 {s['p99'] * 1000:.1f} ms, "
        f"max {s['max'] * 1000:.1f} ms   (goal p50 < 10 ms: {'met' if r['goal_switch_p50_under_10ms'] else 'MISSED'})"
    )
    print(
        f"  set_traffic call: p50 {r['set_traffic_call_s']['p50'] * 1000:.1f} ms; route in force in nginx after "
        f"p50 {r['in_force_after_s']['p50'] * 1000:.1f} ms, p99 {r['in_force_after_s']['p99'] * 1000:.1f} ms"
    )
    print(
        f"  baseline, an nginx graceful reload (the previous switch): p50 {base['p50'] * 1000:.1f} ms, "
        f"p99 {base['p99'] * 1000:.1f} ms  → {r['reload_over_switch_p50']}x the switch"
    )
    sat = r["saturation_rps"]
    print("  throughput at saturation (requests/s, keep-alive clients):")
    for k, v in sat.items():
        print(f"    {k:<22} {v:8.1f}")
    g = r["gateway_over_direct"]
    print(f"  gateway / direct: REST {g['rest']:.3f}, gRPC {g['grpc']:.3f}")
    t = r["tls"]
    print(
        f"  TLS: throughput TLS/plain {t['throughput_tls_over_plain']:.3f}; request latency keep-alive "
        f"{t['tls_keepalive_ms']} ms TLS vs {t['plain_keepalive_ms']} ms plain; new connection "
        f"{t['tls_new_connection_ms']} ms TLS vs {t['plain_new_connection_ms']} ms plain "
        f"(handshake ≈ {t['tls_handshake_ms']} ms)"
    )
    for x in r["release_ttl_s"]:
        print(
            f"  release digits:{x['version']}: serving at {x['to_switched']:.2f} s, DONE at {x['to_done']:.2f} s "
            f"(candidate start→ready {x['green_ready']:.2f} s)"
        )
    if r["ttl_to_switched_over_server_start"] is not None:
        print(f"  release time-to-serve / model server start: {r['ttl_to_switched_over_server_start']:.2f}x")
    q = r["requests"]
    print(
        f"  requests through the gateway: {q['sent']} at {q['rate_per_s']:.0f}/s on {q['connections']} "
        f"connections, failed {q['failed']}"
    )
    for line in q["failures"]:
        print(f"    {line}")
    if "haproxy" in r:
        h = r["haproxy"]
        print(
            f"  HAProxy 2.6 (runtime API): switch p50 {h['switch_latency_s']['p50'] * 1000:.1f} ms, "
            f"p99 {h['switch_latency_s']['p99'] * 1000:.1f} ms; REST / direct {h['rest_over_direct']:.3f}; "
            f"requests {h['requests']['sent']}, failed {h['requests']['failed']}"
        )


if __name__ == "__main__":
    raise SystemExit(main())
