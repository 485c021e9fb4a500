"""The token matrix against the REAL embedded provider (node-oidc-provider): valid tokens it
issued verify; every bad one is refused with a short reason. Where a bad token cannot be obtained
from the provider as it is (an expired one, one not yet valid), it is the provider's own token
re-signed with the provider's own private key from its key file, only the time claims moved, so
that the check under test is the only thing wrong with it."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import jwt
import pytest

from control_plane.identity import config
from control_plane.identity.verifier import TokenRejected, Verifier
from tests.identity import forged


@pytest.fixture()
def verifier(oidc: Any) -> Verifier:
    loaded = config.load()
    assert loaded is not None
    return Verifier(loaded)


def _refused(verifier: Verifier, token: str | None, reason: str) -> None:
    with pytest.raises(TokenRejected) as exc:
        verifier.verify(token)
    assert exc.value.reason == reason, exc.value.reason
    assert not token or token not in exc.value.message  # the reason never echoes the token


def test_valid_tokens_verify_with_mapped_roles(oidc: Any, verifier: Verifier) -> None:
    person = verifier.verify(oidc.tokens_for("amira")["access_token"])
    assert (person.subject, person.kind, person.issuer) == ("amira", "person", oidc.issuer)
    assert person.roles == ["approver"] and person.groups == ["mlctl-approver"]
    workload = verifier.verify(oidc.workload_token())
    assert (workload.kind, workload.client_id, workload.roles) == ("workload", "ci-pipeline", ["ml-engineer"])


def test_token_matrix(oidc: Any, verifier: Verifier) -> None:
    body = oidc.tokens_for("omar")
    good = body["access_token"]

    _refused(verifier, None, "no token")
    _refused(verifier, "", "no token")
    for name, (token, reason) in forged.bad_tokens(oidc, good, body["id_token"]).items():
        with pytest.raises(TokenRejected) as exc:
            verifier.verify(token)
        assert exc.value.reason == reason, (name, exc.value.reason)
        assert token not in exc.value.message  # the reason never echoes the token

    # Wrong audience: a real token, verified by a service with another audience.
    other_service = Verifier(replace(verifier.config, audience="urn:some-other-service"))
    _refused(other_service, good, "wrong audience")
    # Wrong issuer: a service trusting `localhost` refuses the provider's `127.0.0.1` (compared exactly).
    localhost = oidc.issuer.replace("127.0.0.1", "localhost")
    as_localhost = Verifier(replace(verifier.config, issuers=tuple(
        replace(i, issuer=localhost) for i in verifier.config.issuers)))
    _refused(as_localhost, good, "issuer not trusted")

    assert verifier.verify(good).subject == "omar"  # and the untouched token still verifies


def test_key_rotation_is_followed_without_restart(oidc: Any, verifier: Verifier) -> None:
    before = oidc.tokens_for("sara")["access_token"]
    assert verifier.verify(before).roles == ["security-officer"]  # JWKS now cached by the verifier
    new_kid = oidc.provider.rotate_keys()
    after = oidc.tokens_for("sara")["access_token"]
    assert jwt.get_unverified_header(after)["kid"] == new_kid != jwt.get_unverified_header(before)["kid"]
    time.sleep(verifier.refetch_cooldown)  # refetches on an unknown kid are rate-limited
    assert verifier.verify(after).subject == "sara"  # unknown kid: JWKS fetched again, no restart
    assert verifier.verify(before).subject == "sara"  # the previous key stays published


def test_identity_file_errors_are_clear(tmp_path: Any) -> None:
    from control_plane.errors import PolicyViolation

    bad = tmp_path / "identity.yaml"
    bad.write_text("audience: urn:x\nissuers:\n  - issuer: https://idp.example\n    groups: {g: [aproover]}\n")
    with pytest.raises(PolicyViolation, match=r"issuers\[0\].groups.g: unknown role\(s\) aproover"):
        config.load(bad)
    bad.write_text("audience: urn:x\nissuers:\n  - issuer: https://idp.example\n    algorithms: [HS256]\n")
    with pytest.raises(PolicyViolation, match="HS256 not allowed"):
        config.load(bad)


def test_per_issuer_token_typing(oidc: Any, verifier: Verifier, tmp_path: Any) -> None:
    from control_plane.errors import PolicyViolation

    good = oidc.tokens_for("pat")["access_token"]
    strict = Verifier(replace(verifier.config, issuers=tuple(
        replace(i, required_claims={"token_use": "access"}) for i in verifier.config.issuers)))
    _refused(strict, good, "not an access token (token_use)")
    untyped_only = Verifier(replace(verifier.config, issuers=tuple(
        replace(i, access_token_types=("jwt",)) for i in verifier.config.issuers)))
    _refused(untyped_only, good, "not an access token (typ is not at+jwt)")
    same = tmp_path / "identity.yaml"
    same.write_text("audience: mlctl-cli\nissuers:\n  - issuer: https://idp.example\n    cli_client_id: mlctl-cli\n")
    with pytest.raises(PolicyViolation, match="an ID token would pass as an access token"):
        config.load(same)
