"""`mlctl local up|down` also start and stop the gateway (and the local model servers)."""

from __future__ import annotations

import ssl

import httpx
import pytest

from control_plane.access.roles import write_assignments
from control_plane.emulator import processes
from tests.release.helpers import mlctl_json


def test_local_up_starts_the_gateway_and_down_stops_everything(mlctl_home, monkeypatch):
    monkeypatch.setenv("MLCTL_EMULATOR_ENDPOINT", f"http://127.0.0.1:{processes.free_port()}")
    write_assignments({"pat": ["platform-admin"]})  # local.up / local.down: platform-admin (rbac.rego)
    monkeypatch.setenv("MLCTL_ACTOR", "pat")
    try:
        code, up = mlctl_json("local", "up")
        assert code == 0 and up["gateway"]["running"]
        assert up["gateway"]["url"].startswith("https://127.0.0.1:")
        ca_pem = up["ca"]["certificate"]
        # The gateway speaks TLS with a certificate the local CA issued: a client that trusts
        # only that CA connects; one that trusts the system store (not our CA) is refused.
        resp = httpx.get(f"{up['gateway']['url']}/v2/models/nothing/ready", trust_env=False, verify=ssl.create_default_context(cafile=ca_pem))
        assert resp.status_code == 404 and "no such service" in resp.text
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{up['gateway']['url']}/v2/health/ready", trust_env=False)
        assert (mlctl_home / "ca" / "ca.key").stat().st_mode & 0o777 == 0o600
        code, status = mlctl_json("local", "status")
        assert status["gateway"]["pid"] == up["gateway"]["pid"]
    finally:
        code, down = mlctl_json("local", "down")
    assert code == 0 and down["gateway"]["stopped"] and down["emulator"]["stopped"]
    assert not processes.is_alive(up["gateway"]["pid"])
    code, status = mlctl_json("local", "status")
    assert not status["gateway"]["running"]
