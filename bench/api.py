"""Benchmark: the API server's cost per request, against the same service call in-process.

    .venv/bin/python bench/api.py [--n 400] [--output json]

In a temporary $MLCTL_HOME: starts the embedded OpenID provider and `mlctl server` (uvicorn, TLS
with the local CA, in this process's thread), registers and signs one model, logs amira in by the
device flow, then measures in the same run:
  read:     GET /v1/releases/{service} (``release status``) with a bearer token, over one keep-alive
            HTTPS connection; baseline: the same service function (``services.release.status``) called in-process;
  approve:  POST /v1/models/{name}/{version}/approvals (dev tier; approving again is a recorded
            no-op, so each request does the full RBAC + gate evaluation); baseline in-process;
  token:    ``Verifier.verify`` per request (what authentication adds to every call).
Numbers are per request, sequential (one client): latency, not a load test.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._report import add_output_flag, emit, percentile  # noqa: E402  (after the repo is on the path)


def _timings(fn: Callable[[], Any], n: int) -> list[float]:
    fn()  # warm
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def _summary(samples: list[float]) -> dict[str, float]:
    return {"p50_ms": round(percentile(samples, 0.50) * 1000, 3), "p99_ms": round(percentile(samples, 0.99) * 1000, 3),
            "per_s": round(len(samples) / sum(samples), 1)}


def _setup(home: Path) -> None:
    """A registered, signed fraud:1 and a recorded release of it (status needs one)."""
    from control_plane import registry
    from control_plane.access.roles import write_assignments
    from control_plane.settings import overridden

    write_assignments({"dana": ["data-scientist"], "eli": ["ml-engineer"], "amira": ["approver"]})
    src = home / "model"
    (src / "weights").mkdir(parents=True)
    (src / "weights" / "w.bin").write_bytes(os.urandom(4096))
    (src / "config.json").write_text('{"arch": "mlp"}')
    with overridden(actor="eli"):
        registry.register("fraud", "1", src, code_commit="abcdef1")
        registry.sign("fraud", "1")
        from control_plane.drivers.local import LocalDriver
        from control_plane.release import engine
        from control_plane.release.config import ReleaseConfig

        # Recorded only, never run: the read path is what is measured, not a rollout.
        engine.Engine(LocalDriver()).start(model_name="fraud", version="1", env_name="uae-local",
                                           config=ReleaseConfig(strategy="blue-green"), service="fraud")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400)
    add_output_flag(parser)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="mlctl-bench-api-"))
    os.environ["MLCTL_HOME"] = str(home)
    import httpx

    from control_plane import identity
    from control_plane.emulator import ca, idp
    from control_plane.emulator.idp.devlogin import complete_device_login
    from control_plane.emulator.processes import free_port
    from control_plane.server.serve import ServeOptions, in_thread
    from control_plane.services import Context, approvals, release

    info = idp.up()
    try:
        _setup(home)
        device = httpx.post(f"{info.issuer}/device/auth", data={
            "client_id": idp.CLI_CLIENT, "scope": "openid mlctl", "resource": idp.AUDIENCE}).json()
        complete_device_login(device["verification_uri_complete"], "amira")
        token = httpx.post(f"{info.issuer}/token", data={
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": device["device_code"],
            "client_id": idp.CLI_CLIENT}).json()["access_token"]
        verifier = identity.verifier()
        assert verifier is not None
        me = verifier.verify(token)
        ctx = Context.for_actor(identity.Actor(me.actor, "verified", me.roles, me))
        headers = {"Authorization": f"Bearer {token}"}
        with in_thread(ServeOptions(port=free_port())) as url, \
                httpx.Client(base_url=url, verify=ca.ssl_context(), headers=headers) as client:
            def http_read() -> None:
                assert client.get("/v1/releases/fraud").status_code == 200

            def http_approve() -> None:
                r = client.post("/v1/models/fraud/1/approvals", json={"env": "uae-local"})
                assert r.status_code == 200, r.text

            def local_read() -> None:
                release.status(ctx, "fraud")

            def local_approve() -> None:
                approvals.approve(ctx, "fraud", "1", "uae-local")

            result = {
                "n": args.n,
                "read": {"http": _summary(_timings(http_read, args.n)),
                         "in_process": _summary(_timings(local_read, args.n))},
                "approve": {"http": _summary(_timings(http_approve, args.n)),
                            "in_process": _summary(_timings(local_approve, args.n))},
                "token_verify": _summary(_timings(lambda: verifier.verify(token), args.n)),
            }
    finally:
        idp.down()
    for verb in ("read", "approve"):
        r = result[verb]
        r["ratio_p50"] = round(r["http"]["p50_ms"] / r["in_process"]["p50_ms"], 2)  # type: ignore[index]
    lines = [f"API server vs in-process, {args.n} sequential requests each (HTTPS keep-alive, bearer token)"]
    for verb, label in (("read", "release status"), ("approve", "approve (dev tier)")):
        r = result[verb]
        h, b = r["http"], r["in_process"]
        lines.append(f"  {label:<20} http p50 {h['p50_ms']:>7} ms  p99 {h['p99_ms']:>7} ms  {h['per_s']:>7}/s"
                     f"   in-process p50 {b['p50_ms']:>7} ms  p99 {b['p99_ms']:>7} ms   ratio {r['ratio_p50']}x")
    t = result["token_verify"]
    lines.append(f"  token verification   p50 {t['p50_ms']} ms per request ({t['per_s']}/s on one core)")
    emit(result, args.output, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
