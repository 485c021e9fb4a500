"""The local gateway (nginx + Lua, TLS from the local CA): switches without reload on kept-alive
connections, V2 gRPC with the same weights, one colour pinned for smoke tests, mirroring with a
shared X-Request-ID, and — under load from keep-alive TLS clients over REST and gRPC — a
blue-green cutover, a canary and a rollback that lose no request."""

from __future__ import annotations

import http.client
import json
import time
import uuid
from pathlib import Path

import grpc
import httpx
import pytest
import tritonclient.grpc as tgrpc
from tritonclient.grpc import service_pb2, service_pb2_grpc

from control_plane.drivers import gateway
from control_plane.drivers.base import Deployment
from control_plane.drivers.local import LocalDriver
from control_plane.emulator import ca
from control_plane.errors import InfraError
from control_plane.monitor.request_log import log_path
from control_plane.release.loadgen import GrpcLoadStream, LoadStream
from tests.release.helpers import FAST, mlctl_json

SERVICE = "gw"


def _workers(master: int) -> set[int]:
    """PIDs of the nginx master's worker processes (a reload would replace them)."""
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == master:
                out.add(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return out


@pytest.fixture()
def two_colours(world):
    """digits v1 on blue and v2 on green of service ``gw``, both ready, no traffic yet."""
    driver = LocalDriver()
    for colour, variant in (("blue", "v1"), ("green", "v2")):
        path = world.samples[variant].path
        driver.apply(
            SERVICE,
            colour,
            Deployment(
                service=SERVICE, model_name="digits", model_version=variant, digest=variant,
                release_id=f"test-{colour}", storage_uri=f"file://{path}", local_path=path,
            ),
        )
    deadline = time.monotonic() + 90
    for colour in ("blue", "green"):
        while not driver.ready(SERVICE, colour).ready:
            assert time.monotonic() < deadline, driver.ready(SERVICE, colour).reason
            time.sleep(0.1)
    return driver


def _https() -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection(gateway.HOST, gateway.port(), timeout=10, context=ca.ssl_context())


def _infer(conn: http.client.HTTPConnection, body: bytes, headers: dict[str, str] | None = None):
    conn.request("POST", f"/v2/models/{SERVICE}/infer", body=body, headers={"Content-Type": "application/json", **(headers or {})})
    resp = conn.getresponse()
    return resp.status, resp.getheader("X-Served-By"), resp.getheader("X-Request-ID"), json.loads(resp.read())


def test_switch_takes_effect_on_the_same_kept_alive_connection_without_reload(world, two_colours):
    driver = two_colours
    blue, green = driver.server_address(SERVICE, "blue"), driver.server_address(SERVICE, "green")
    body = json.dumps(world.samples["v1"].sample_request()).encode()
    conn = _https()
    # Before any weights: the service is known (its colours are deployed) but takes no traffic.
    status, *_ = _infer(conn, body)
    assert status == 503
    driver.set_traffic(SERVICE, {"blue": 100})
    master = gateway.status().pid
    assert master is not None
    workers = _workers(master)
    status, served, _, _ = _infer(conn, body)
    sock = conn.sock
    assert (status, served) == (200, blue)
    for target, address in (("green", green), ("blue", blue), ("green", green)):
        started = time.perf_counter()
        driver.set_traffic(SERVICE, {target: 100, "blue" if target == "green" else "green": 0})
        took = time.perf_counter() - started
        status, served, _, _ = _infer(conn, body)  # the very next request, same connection
        assert (status, served) == (200, address), (target, status, served)
        assert took < 2.0  # generous: this is a correctness test on a shared machine, not a bench
    assert conn.sock is sock, "the client's keep-alive connection was closed by a switch"
    assert _workers(master) == workers, "nginx was reloaded (its workers changed)"
    conn.close()


def test_grpc_goes_through_the_gateway_over_tls_with_the_same_weights(world, two_colours):
    driver = two_colours
    driver.set_traffic(SERVICE, {"blue": 50, "green": 50})
    sample = world.samples["v1"].sample_request()
    # NVIDIA's client, as users run it: TLS against the local CA, the service in the metadata.
    client = tgrpc.InferenceServerClient(
        gateway.grpc_target(), ssl=True, root_certificates=str(ca.ca_cert_path())
    )
    meta = {"mlctl-service": SERVICE}
    assert client.is_model_ready(SERVICE, headers=meta)
    spec = sample["inputs"][0]
    inp = tgrpc.InferInput(spec["name"], spec["shape"], "FP32")
    import numpy as np

    inp.set_data_from_numpy(np.asarray(spec["data"], dtype=np.float32).reshape(spec["shape"]))
    result = client.infer(SERVICE, [inp], headers=meta)
    out = result.get_response().outputs[0]
    assert list(out.shape) == [spec["shape"][0], 10]  # ten class scores per image

    # The same weights as REST: both colours' gRPC ports answer a 50/50 split.
    stream = GrpcLoadStream(gateway.grpc_target(), SERVICE, sample, rate=60, threads=2, max_requests=120).start()
    stream.wait_for(120, timeout=60)
    stats = stream.stop()
    assert stats.failed == 0, stats.errors[:3]
    served = {s.served_by for s in stats.samples}
    assert served == {driver.grpc_address(SERVICE, "blue"), driver.grpc_address(SERVICE, "green")}
    assert stream.connections == 2  # one HTTP/2 channel per client thread, kept

    # A call that names no service is refused with a message saying what to add.
    channel = grpc.secure_channel(
        gateway.grpc_target(), grpc.ssl_channel_credentials(ca.ca_cert_path().read_bytes())
    )
    stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
    with pytest.raises(grpc.RpcError) as err:
        stub.ModelReady(service_pb2.ModelReadyRequest(name=SERVICE), timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "mlctl-service" in err.value.details()
    channel.close()


def test_a_pinned_colour_is_reachable_over_tls_before_it_has_traffic(world, two_colours):
    driver = two_colours
    driver.set_traffic(SERVICE, {"blue": 100, "green": 0})
    url = driver.endpoint(SERVICE, "green")
    assert url.startswith("https://127.0.0.1:")
    with httpx.Client(verify=ca.ssl_context(), trust_env=False) as client:
        ready = client.get(f"{url}/v2/models/{SERVICE}/ready")
        assert ready.status_code == 200 and ready.json()["ready"]
        assert ready.headers["x-served-by"] == driver.server_address(SERVICE, "green")
        metrics = client.get(driver.metrics_source(SERVICE, "green").url)
        assert metrics.status_code == 200 and "mlctl_requests_total" in metrics.text
        # Without the local CA the gateway is not trusted.
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/v2/models/{SERVICE}/ready", trust_env=False)


def _log_by_request_id() -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {}
    path = log_path(SERVICE)
    if not path.exists():
        return seen
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        if rec.get("request_id"):
            seen.setdefault(rec["request_id"], []).append(rec["version"])
    return seen


def _wait_log(ids: list[str], want: int, timeout: float = 10.0) -> dict[str, list[str]]:
    deadline = time.monotonic() + timeout
    while True:
        seen = _log_by_request_id()
        if sum(len(seen.get(i, [])) for i in ids) >= want or time.monotonic() > deadline:
            return seen
        time.sleep(0.1)


def test_mirror_sends_copies_with_the_same_request_id_and_clients_never_see_them(world, two_colours):
    driver = two_colours
    driver.set_traffic(SERVICE, {"blue": 100, "green": 0})
    blue = driver.server_address(SERVICE, "blue")
    body = json.dumps(world.samples["v1"].sample_request()).encode()
    conn = _https()
    _, _, _, blue_answer = _infer(conn, body)

    gateway.set_mirror(SERVICE, "green", 100)
    assert gateway.routes(SERVICE)["mirror"] == {"colour": "green", "percent": 100.0}
    ids = []
    for i in range(20):
        own = f"client-{uuid.uuid4().hex}" if i % 2 else None  # a client's own id is kept
        status, served, rid, answer = _infer(conn, body, {"X-Request-ID": own} if own else None)
        assert (status, served) == (200, blue)
        assert answer["outputs"] == blue_answer["outputs"]  # production's answer, never the shadow's
        assert rid and (rid == own if own else len(rid) == 32)
        ids.append(rid)
    seen = _wait_log(ids, want=40)
    assert all(sorted(seen.get(i, [])) == ["v1", "v2"] for i in ids), {i: seen.get(i) for i in ids}

    gateway.set_mirror(SERVICE, "green", 25)
    ids = [_infer(conn, body)[2] for _ in range(200)]
    seen = _wait_log(ids, want=200 + 20, timeout=5)
    copies = sum(1 for i in ids if "v2" in seen.get(i, []))
    assert 15 <= copies <= 90, copies  # about a quarter (binomial, n=200: 50 ± 6)

    gateway.clear_mirror(SERVICE)
    ids = [_infer(conn, body)[2] for _ in range(20)]
    time.sleep(1.0)
    seen = _log_by_request_id()
    assert all(seen.get(i) == ["v1"] for i in ids)
    conn.close()
    with pytest.raises(InfraError, match="out of range"):
        gateway.set_mirror(SERVICE, "green", 0)


def test_the_admin_socket_is_private_and_validates_routes(world, two_colours):
    sock = gateway._admin_socket()
    assert sock.parent.stat().st_mode & 0o077 == 0  # only this user can reach the socket
    with pytest.raises(InfraError, match="unknown field"):
        gateway._admin("PUT", f"/routes/{SERVICE}", {"weights": {"blue": 100}, "evil": 1})
    with pytest.raises(InfraError, match="no port recorded"):
        gateway.set_weights("nosuch", {"blue": 100})


# -- the acceptance: ≥ 10,000 requests from keep-alive TLS clients, zero lost ------------------


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_keepalive_tls_clients_lose_nothing_across_cutover_canary_and_rollback(world):
    world.register("3", "v1")  # same model as 1, a new version: the canary's candidate
    code, v1 = mlctl_json("release", "digits:1", *FAST)
    assert code == 0 and v1["state"] == "DONE", v1["reasons"]
    master = gateway.status().pid
    assert master is not None
    workers = _workers(master)
    sample = world.samples["v1"].sample_request()
    # Modest, steady load (a shared machine): 150/s REST + 70/s gRPC, every thread on one
    # kept-alive TLS connection for the whole test.
    rest = LoadStream(gateway.url(), "digits", sample, rate=150, threads=6, max_requests=40_000, max_seconds=300)
    rpc = GrpcLoadStream(gateway.grpc_target(), "digits", sample, rate=70, threads=3, max_requests=20_000, max_seconds=300)
    rest.start()
    rpc.start()
    try:
        rest.wait_for(600, timeout=30)
        code, bg = mlctl_json("release", "digits:2", *FAST)  # blue-green
        assert code == 0 and bg["state"] == "DONE" and bg["weights"] == {"blue": 0, "green": 100}, bg["reasons"]
        code, canary = mlctl_json(
            "release", "digits:3", "--strategy", "canary", "--steps", "20,50", "--pause", "2",
            "--analysis-window", "1", "--scale-down-delay", "60", "--min-requests", "0",
            "--pre-analysis-requests", "20",
        )
        assert code == 0 and canary["state"] == "DONE", canary["reasons"]
        assert [a["name"] for a in canary["analysis"]][1:3] == ["canary step 1 (20%)", "canary step 2 (50%)"]
        code, back = mlctl_json("release", "rollback", "digits")
        assert code == 0 and back["state"] == "DONE" and back["model"] == "digits:2", back["reasons"]
        deadline = time.monotonic() + 120
        while rest.stats.sent + rpc.stats.sent < 10_500 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        rest_stats, rpc_stats = rest.stop(), rpc.stop()

    total = rest_stats.sent + rpc_stats.sent
    print(  # shown with -rA: the rate this machine sustained (the assertion is about loss only)
        f"REST {rest_stats.sent} at {rest.achieved_rate:.0f}/s, gRPC {rpc_stats.sent} at "
        f"{rpc.achieved_rate:.0f}/s, failed {rest_stats.failed + rpc_stats.failed}"
    )
    assert total >= 10_000, total
    assert rest_stats.failed == 0, (rest_stats.failed, rest_stats.errors[:5])
    assert rpc_stats.failed == 0, (rpc_stats.failed, rpc_stats.errors[:5])
    # Keep-alive really held: no client thread ever had to open a second connection.
    assert rest.connections == 6 and rpc.connections == 3
    assert _workers(master) == workers, "nginx was reloaded during the releases"
    # Both protocols really followed the switches: each saw both colours answer.
    assert len({s.served_by for s in rest_stats.samples}) >= 2
    assert len({s.served_by for s in rpc_stats.samples}) >= 2
