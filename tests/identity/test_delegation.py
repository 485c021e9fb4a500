"""The delegation credential the server hands the steps of a run it drives: a real credential minted
by ``identity.delegation`` is accepted only intact, unexpired and for the step's own run; every
alteration is refused naming why (never a fall back to another identity); the audit entries of a
delegated identity say so."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest

from control_plane import audit, identity
from control_plane.errors import PolicyViolation
from control_plane.identity import delegation
from control_plane.identity.verifier import VerifiedIdentity

ELI = VerifiedIdentity(issuer="https://idp.example.ae", subject="eli", kind="person", client_id="mlctl-cli",
                       roles=["ml-engineer"], groups=["mlctl-ml-engineer"], name="Eli")


@pytest.fixture()
def step(mlctl_home: Path, monkeypatch: pytest.MonkeyPatch):
    """This process as a step: ``put(credential)`` is the environment the server gave it."""
    monkeypatch.setattr(delegation, "_step_of", None)

    def put(credential: str, run_id: str = "digits-0123456789ab") -> None:
        monkeypatch.setenv("MLCTL_DELEGATION", credential)
        monkeypatch.setattr(delegation, "_step_of", run_id)

    return put


def _claims(credential: str) -> dict:
    body = credential.split(".")[2]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def _with_claims(credential: str, **changes: object) -> str:
    """The credential with its claims edited and re-encoded, the MAC kept: what a forger can do."""
    prefix, version, _, mac = credential.split(".")
    body = base64.urlsafe_b64encode(json.dumps({**_claims(credential), **changes}).encode()).rstrip(b"=").decode()
    return ".".join((prefix, version, body, mac))


def test_a_step_acts_as_the_delegated_identity_and_the_audit_says_so(step) -> None:
    credential = delegation.mint(ELI, "digits-0123456789ab", ttl_s=600)
    assert "eli" not in credential.split(".")[-1]  # the MAC, not a readable secret
    key = delegation.key_path()
    assert key.stat().st_mode & 0o777 == 0o600 and len(key.read_bytes()) == 32
    step(credential)
    me = identity.current()
    assert (me.name, me.source, me.roles, me.delegated_run) == ("eli", "delegated", ["ml-engineer"],
                                                                 "digits-0123456789ab")
    assert me.is_verified and me.verified is not None and me.verified.groups == ["mlctl-ml-engineer"]
    entry = audit.record(action="model.register", subject="digits:1")
    ident = entry.identity
    assert (ident["method"], ident["issuer"], ident["subject"], ident["client"], ident["kind"]) == \
        ("delegated", "https://idp.example.ae", "eli", "mlctl-cli", "person")
    assert entry.actor == "eli" and entry.roles == ["ml-engineer"]
    assert entry.details["identity"] == {"source": "delegated", "issuer": "https://idp.example.ae", "subject": "eli",
                                         "kind": "person", "client": "mlctl-cli", "delegated_by": "mlctl-server",
                                         "run": "digits-0123456789ab"}


def test_an_edited_credential_is_refused(step) -> None:
    credential = delegation.mint(ELI, "digits-0123456789ab", ttl_s=600)
    forged = {
        "another subject": _with_claims(credential, sub="pat"),
        "more roles": _with_claims(credential, roles=["platform-admin"]),
        "a later expiry": _with_claims(credential, exp=int(time.time()) + 10**6),
        "another MAC": credential[:-2] + ("AA" if not credential.endswith("AA") else "BB"),
    }
    for what, text in forged.items():
        step(text)
        with pytest.raises(PolicyViolation) as exc:
            identity.current()
        assert "its MAC does not verify (it was altered" in exc.value.message, what
        assert "start the run again through the server" in (exc.value.hint or "")
    for text in ("garbage", "mlctl-delegation.v1.onlybody", "mlctl-delegation.v1.a.b.c"):
        step(text)
        with pytest.raises(PolicyViolation, match="malformed"):
            identity.current()


def test_a_credential_minted_with_another_key_is_refused(step, tmp_path: Path, monkeypatch) -> None:
    credential = delegation.mint(ELI, "digits-0123456789ab", ttl_s=600)
    delegation.key_path().unlink()
    delegation.mint(ELI, "other-run", ttl_s=600)  # this home's key is now another one
    step(credential)
    with pytest.raises(PolicyViolation, match="another server's key"):
        identity.current()


def test_an_expired_credential_is_refused(step) -> None:
    credential = delegation.mint(ELI, "digits-0123456789ab", ttl_s=60, now=time.time() - 120)
    step(credential)
    with pytest.raises(PolicyViolation) as exc:
        identity.current()
    assert "expired at" in exc.value.message and "(the run's time limit)" in exc.value.message


def test_a_credential_for_another_run_is_refused(step) -> None:
    credential = delegation.mint(ELI, "digits-aaaaaaaaaaaa", ttl_s=600)
    step(credential, run_id="digits-bbbbbbbbbbbb")
    with pytest.raises(PolicyViolation) as exc:
        identity.current()
    assert exc.value.message.endswith("issued for run digits-aaaaaaaaaaaa, not for this step's run digits-bbbbbbbbbbbb")


def test_a_key_others_can_read_refuses_the_credential(step) -> None:
    credential = delegation.mint(ELI, "digits-0123456789ab", ttl_s=600)
    delegation.key_path().chmod(0o644)
    step(credential)
    with pytest.raises(PolicyViolation, match="is not private to this user"):
        identity.current()
    delegation.key_path().unlink()
    with pytest.raises(PolicyViolation, match=r"key .* is missing"):
        identity.current()


def test_a_process_that_is_no_step_ignores_it_and_belongs_to_checks_at_once(
        mlctl_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delegation, "_step_of", None)
    credential = delegation.mint(ELI, "digits-0123456789ab", ttl_s=600)
    monkeypatch.setenv("MLCTL_DELEGATION", _with_claims(credential, sub="pat"))
    monkeypatch.setenv("MLCTL_ACTOR", "dana")
    assert identity.current().name == "dana"  # the server itself, holding the variable while it drives a run
    with pytest.raises(PolicyViolation, match="MAC does not verify"):
        delegation.belongs_to("digits-0123456789ab")  # the step wrapper: fails before the step starts
    monkeypatch.setenv("MLCTL_DELEGATION", credential)
    assert delegation.belongs_to("digits-0123456789ab") is not None
    assert identity.current().source == "delegated"  # over --as: the server's delegation is what the step is for
    with identity.acting(identity.Actor("pat", "asserted", [])):
        assert identity.current().name == "pat"  # a bound identity still comes first


def test_the_credential_stays_out_of_the_settings_repr(mlctl_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from control_plane import settings

    credential = delegation.mint(ELI, "digits-0123456789ab", ttl_s=600)
    monkeypatch.setenv("MLCTL_DELEGATION", credential)
    assert settings.current().delegation == credential
    assert credential not in repr(settings.current())
