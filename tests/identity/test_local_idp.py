"""`mlctl local up` starts the embedded OpenID provider (idempotently) and writes an identity file
that trusts it, unless the operator wrote their own; `mlctl local down` stops it."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
import yaml

from control_plane.access.roles import write_assignments
from control_plane.emulator import processes
from tests.release.helpers import mlctl_json

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("node") is None or not (REPO / "node_modules" / "oidc-provider").exists(),
                                reason="needs node and `npm ci`")


def test_local_up_starts_the_provider_and_down_stops_it(mlctl_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLCTL_EMULATOR_ENDPOINT", f"http://127.0.0.1:{processes.free_port()}")
    write_assignments({"pat": ["platform-admin"]})  # local.up / local.down: platform-admin (rbac.rego)
    monkeypatch.setenv("MLCTL_ACTOR", "pat")
    monkeypatch.delenv("MLCTL_IDENTITY_FILE", raising=False)
    try:
        code, up = mlctl_json("local", "up")
        assert code == 0 and up["oidc_provider"]["running"]
        issuer = up["oidc_provider"]["issuer"]
        assert issuer.startswith("http://127.0.0.1:")
        discovery = httpx.get(f"{issuer}/.well-known/openid-configuration", trust_env=False).json()
        assert discovery["issuer"] == issuer and "urn:ietf:params:oauth:grant-type:device_code" in \
            discovery["grant_types_supported"] and "client_credentials" in discovery["grant_types_supported"]
        identity = mlctl_home / "identity.yaml"
        assert identity.stat().st_mode & 0o777 == 0o600
        doc = yaml.safe_load(identity.read_text())
        assert doc["issuers"][0]["issuer"] == issuer
        assert doc["issuers"][0]["groups"]["mlctl-approver"] == ["approver"]
        assert (mlctl_home / "idp" / "jwks.json").stat().st_mode & 0o777 == 0o600

        code, again = mlctl_json("local", "up")  # idempotent: the same provider
        assert again["oidc_provider"]["pid"] == up["oidc_provider"]["pid"]
        code, status = mlctl_json("local", "status")
        assert status["oidc_provider"]["running"] and status["oidc_provider"]["issuer"] == issuer
    finally:
        code, down = mlctl_json("local", "down")
    assert code == 0 and down["oidc_provider"]["stopped"]
    assert not processes.is_alive(up["oidc_provider"]["pid"])

    mine = "audience: urn:mine\nissuers:\n  - issuer: https://idp.example\n"
    (mlctl_home / "identity.yaml").write_text(mine)  # the operator's own file is never replaced
    try:
        code, up = mlctl_json("local", "up")
        assert code == 0
    finally:
        mlctl_json("local", "down")
    assert (mlctl_home / "identity.yaml").read_text() == mine
