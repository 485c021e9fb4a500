"""`mlctl server` authenticates every request with the real provider's tokens, over TLS.

Each bad token is refused with 401 (a short reason, never the token) and changes nothing in the
store; a key rotation at the provider is followed without restarting the server."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import yaml

from control_plane import approvals, audit
from tests.identity import forged
from tests.server.conftest import Api


@pytest.fixture()
def model(signed_fraud: str) -> str:
    return signed_fraud


def _store_state() -> tuple[int, int]:
    return len(approvals.approvals_for("fraud", "1", "uae-prod-aws")), len(audit.entries())


def test_only_tls_with_the_local_ca(api: Api) -> None:
    assert api.url.startswith("https://")
    with pytest.raises(httpx.ConnectError):  # a client that does not trust the local CA
        httpx.get(f"{api.url}/healthz", verify=True, timeout=5)
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"store": "ok", "identity": "ok"}
    assert api.client.get("/openapi.json").json()["info"]["title"] == "mlctl control plane"


def test_token_matrix_over_http(api: Api, model: str) -> None:
    body = api.oidc.tokens_for("omar")
    good = body["access_token"]
    before = _store_state()
    path, payload = "/v1/models/fraud/1/approvals", {"env": "uae-prod-aws"}

    r = api.client.post(path, json=payload)  # no Authorization header at all
    assert r.status_code == 401 and r.json()["error"]["message"] == "not authenticated: no bearer token"
    assert r.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    for name, (token, reason) in forged.bad_tokens(api.oidc, good, body["id_token"]).items():
        r = api.call("POST", path, token, json=payload)
        assert r.status_code == 401, (name, r.status_code, r.text)
        assert r.json()["error"]["message"] == f"not authenticated: {reason}", name
        assert token not in r.text
    assert _store_state() == before  # nothing recorded for any refused request

    metrics = api.client.get("/metrics").text
    assert 'mlctl_api_tokens_rejected_total{reason="expired"} 1.0' in metrics
    assert 'route="/v1/models/{name}/{version}/approvals",status="401"' in metrics  # templates, not input

    r = api.call("POST", path, good, json=payload)  # the untouched token is accepted
    assert r.status_code == 200, r.text
    assert r.json()["approvers"] == ["omar"] and not r.json()["allowed"]


def test_server_trusting_localhost_refuses_the_127_issuer(api: Api, model: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    doc = yaml.safe_load(api.oidc.provider.identity_file.read_text())
    doc["issuers"][0]["issuer"] = api.oidc.issuer.replace("127.0.0.1", "localhost")
    (tmp_path / "identity.yaml").write_text(yaml.safe_dump(doc))
    monkeypatch.setenv("MLCTL_IDENTITY_FILE", str(tmp_path / "identity.yaml"))
    r = api.call("GET", "/v1/whoami", api.token("omar"))
    assert r.status_code == 401 and r.json()["error"]["message"] == "not authenticated: issuer not trusted"


def test_key_rotation_is_followed_without_restart(api: Api) -> None:
    before = api.token("sara")
    assert api.call("GET", "/v1/whoami", before).json()["roles"] == ["security-officer"]
    new_kid = api.oidc.provider.rotate_keys()
    after = api.token("sara")
    assert jwt.get_unverified_header(after)["kid"] == new_kid
    from control_plane.identity.verifier import REFETCH_COOLDOWN_SECONDS

    time.sleep(REFETCH_COOLDOWN_SECONDS)  # refetches on an unknown kid are rate-limited
    who = api.call("GET", "/v1/whoami", after)
    assert who.status_code == 200 and who.json()["subject"] == "sara"
    assert api.call("GET", "/v1/whoami", before).status_code == 200  # the old key stays published


def test_whoami_is_the_verified_identity(api: Api) -> None:
    who = api.call("GET", "/v1/whoami", api.token("amira")).json()
    assert 0 < who.pop("expires_in") <= 300  # the embedded provider's access tokens live 5 minutes
    assert who == {"actor": "amira", "roles": ["approver"], "source": "verified", "issuer": api.oidc.issuer,
                   "subject": "amira", "kind": "person", "client": "mlctl-cli", "name": "amira",
                   "groups": ["mlctl-approver"]}


def test_insecure_dev_serves_dev_tiers_only(oidc: Any, model: Any) -> None:
    from tests.server.conftest import running

    with running(insecure_dev=True) as url:
        token = oidc.tokens_for("amira")["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        prod = httpx.post(f"{url}/v1/models/fraud/1/approvals", json={"env": "uae-prod-aws"}, headers=headers)
        assert prod.status_code == 403 and "--insecure-dev (plain HTTP) and refuses uae-prod-aws" in prod.text
        dev = httpx.post(f"{url}/v1/models/fraud/1/approvals", json={"env": "uae-local"}, headers=headers)
        assert dev.status_code == 200 and dev.json()["allowed"]
