"""A prod-tier release over HTTPS, with verified tokens from the real OpenID provider: the gates run
in the request, so one approval (the two-person rule) or a development-key signature is refused
with its reason and fix before the 202; two approvals from distinct verified subjects and the
environment's KMS key (the AWS emulator's) release it, driven to DONE by the server's background
jobs, and the audit trail names both approvers by their verified (iss, sub)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from control_plane import audit, registry
from control_plane.release import engine, repository
from control_plane.samples import SampleModel, build_sample_model
from control_plane.services import Context, models
from tests.cli_runner import run_mlctl
from tests.release.conftest import _stop_all
from tests.release.test_keyring import _kms_signing_key, _prod_env
from tests.server.conftest import Api
from tests.server.test_releases import FAST, _wait_for_end

ENV_NAME = "uae-prodsim-local"


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleModel:
    return build_sample_model(tmp_path_factory.mktemp("prod-samples") / "v1", variant="v1")


@pytest.fixture()
def prod_env(api: Api, aws_emulator: str, tmp_path: Path, mlctl_home: Path,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A prod-tier blueprint environment on the local driver whose KMS key lives in the emulator: the
    server's MLCTL_BLUEPRINT, so a request names it (a request never names a file)."""
    env = _prod_env(tmp_path)
    monkeypatch.setenv("MLCTL_BLUEPRINT", str(env))
    _kms_signing_key(aws_emulator, ENV_NAME)
    try:
        yield ENV_NAME
    finally:
        _stop_all(mlctl_home)


def _register(api: Api, sample: SampleModel, version: str) -> None:
    api.oidc.login("dana")  # a data scientist registers (she may never approve it)
    models.register(Context(), "digits", version, sample.path, code_commit="0" * 40)


def _approve(api: Api, version: str, env: str, *approvers: str) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for who in approvers:
        r = api.call("POST", f"/v1/models/digits/{version}/approvals", api.token(who), json={"env": env})
        assert r.status_code == 200, r.text
        body = r.json()
    return body


def _release(api: Api, env: str, version: str) -> Any:
    return api.call("POST", "/v1/releases", api.token("eli"),
                    json={"model": f"digits:{version}", "env": env, "config": FAST})


def test_prod_release_over_https_needs_two_verified_approvers(api: Api, sample: SampleModel, prod_env: str) -> None:
    _register(api, sample, "1")
    signed = api.call("POST", "/v1/models/digits/1/signatures", api.token("eli"),
                      json={"signer": "kms", "env": prod_env})
    assert signed.status_code == 200, signed.text
    assert registry.get_version("digits", "1").signature.signer_kind == "aws-kms"

    # (a) One approval: refused in the request, the two-person rule named, nothing deployed.
    one = _approve(api, "1", prod_env, "amira")
    assert not one["allowed"]
    r = _release(api, prod_env, "1")
    assert r.status_code == 403, r.text
    error = r.json()["error"]
    assert "approvals: prod: prod needs 2 distinct approvers" in error["message"], error
    assert error["exit_code"] == 4 and f"mlctl approve digits:1 --env {prod_env}" in error["hint"]
    refused = repository.latest_release("digits")
    assert refused is not None and refused.state == engine.REFUSED and refused.created_by == "eli"
    assert engine.live("digits") is None  # nothing was applied or serves
    status = api.call("GET", "/v1/releases/digits", api.token("eli")).json()
    assert status["state"] == "REFUSED" and status["runtime"]["serving"] is None
    [denied] = [e for e in audit.entries() if e.action == "release.transition" and e.decision == "deny"]
    assert denied.details["to"] == "REFUSED" and denied.details["gate"] == "approvals"
    assert denied.identity["subject"] == "eli" and denied.identity["issuer"] == api.oidc.issuer

    # (b) A second approval from a distinct verified subject: accepted, driven to DONE, serving.
    two = _approve(api, "1", prod_env, "omar")
    assert two["allowed"] and two["approvers"] == ["amira", "omar"], two
    r = _release(api, prod_env, "1")
    assert r.status_code == 202, r.text
    done = _wait_for_end(api, api.token("eli"))
    assert done["state"] == "DONE", done
    assert done["runtime"]["serving"] is True and done["live"]["version"] == "1"

    approvals = [e for e in audit.entries() if e.action == "approve" and e.decision == "allow"]
    assert {(e.identity["issuer"], e.identity["subject"], e.identity["method"]) for e in approvals} == {
        (api.oidc.issuer, "amira", "oidc"), (api.oidc.issuer, "omar", "oidc")}
    assert all(e.subject == f"digits:1@{ENV_NAME}" for e in approvals)
    verified = [e for e in audit.entries() if e.action == "release.transition" and e.details.get("to") == "VERIFIED"]
    assert "aws-kms" in str(verified[-1].details["signer"])  # the environment's KMS key, from the keyring
    approved = [e for e in audit.entries() if e.action == "release.transition" and e.details.get("to") == "APPROVED"]
    assert any("amira" in r and "omar" in r for r in approved[-1].details["approvals"]), approved[-1].details


def test_prod_release_signed_with_the_dev_key_is_refused_over_https(api: Api, sample: SampleModel, prod_env: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _register(api, sample, "2")
    api.oidc.login("eli")
    registry.sign("digits", "2")  # the local development key
    assert _approve(api, "2", prod_env, "amira", "omar")["allowed"]  # approvals are not what stops it

    r = _release(api, prod_env, "2")
    assert r.status_code == 403, r.text
    message = r.json()["error"]["message"]
    assert "signature: signed with the development key" in message and f"{ENV_NAME} is prod tier" in message
    assert repository.latest_release("digits").state == engine.REFUSED  # type: ignore[union-attr]

    # The CLI as the server's client: the same refusal, its fix and exit code 4, at once.
    monkeypatch.setenv("MLCTL_SERVER", api.url)
    cli = run_mlctl("release", "digits:2", "--env", prod_env, "-o", "json", in_process=True)
    assert cli.returncode == 4, cli
    assert "signed with the development key" in cli.stderr and "mlctl model sign digits:2" in cli.stderr
    assert engine.live("digits") is None
    refusals = [e for e in audit.entries() if e.action == "release.transition" and e.decision == "deny"]
    assert len(refusals) == 2 and all(e.details["gate"] == "signature" for e in refusals)
