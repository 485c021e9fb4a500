"""`mlctl server` refuses to start unless the store and the identity file are the server's alone,
and it audits the identity file: its digest at start-up and every change it reloads."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from control_plane import audit
from control_plane.emulator import ca
from control_plane.emulator.processes import free_port
from control_plane.errors import PolicyViolation
from control_plane.server import lockdown
from control_plane.server.serve import ServeOptions, config
from control_plane.store import db
from tests.cli_runner import run_mlctl
from tests.server.conftest import running


def _store(home: Path) -> Path:
    db.get_engine()  # creates and migrates the SQLite store
    return home / "mlctl.db"


def _refusal(**options: Any) -> PolicyViolation:
    with pytest.raises(PolicyViolation) as raised:
        config(ServeOptions(port=free_port(), **options))
    return raised.value


def test_a_new_store_is_private(mlctl_home: Path) -> None:
    store = _store(mlctl_home)
    assert store.stat().st_mode & 0o777 == 0o600
    wal = store.with_name("mlctl.db-wal")
    assert wal.exists() and wal.stat().st_mode & 0o777 == 0o600  # SQLite copies the database's mode


def test_a_store_others_can_read_stops_the_server(mlctl_home: Path) -> None:
    store = _store(mlctl_home)
    store.chmod(0o644)
    exc = _refusal()
    assert str(store) in exc.message and "readable or writable by other users (mode 644)" in exc.message
    assert exc.hint == f"chmod 600 {store}"
    # The same through the command: the refusal, its fix and exit code 4, no traceback, not serving.
    r = run_mlctl("server", "--port", str(free_port()), timeout=60)
    assert r.returncode == 4 and f"chmod 600 {store}" in r.stderr and "Traceback" not in r.stderr, r
    store.chmod(0o600)
    config(ServeOptions(port=free_port()))  # fixed: it starts


def test_a_home_others_can_enter_stops_the_server(mlctl_home: Path) -> None:
    mlctl_home.chmod(0o750)
    try:
        exc = _refusal()
        assert "$MLCTL_HOME" in exc.message and "mode 750" in exc.message and exc.hint == f"chmod 700 {mlctl_home}"
    finally:
        mlctl_home.chmod(0o700)


def test_an_identity_file_others_can_write_stops_the_server(oidc: Any, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    private = tmp_path / "conf"
    private.mkdir(mode=0o700)
    ident = private / "identity.yaml"
    shutil.copy(oidc.provider.identity_file, ident)
    monkeypatch.setenv("MLCTL_IDENTITY_FILE", str(ident))
    ident.chmod(0o664)
    exc = _refusal()
    assert "the identity file" in exc.message and "writable by other users (mode 664)" in exc.message
    assert exc.hint == f"chmod 600 {ident}"
    ident.chmod(0o644)  # world-readable configuration is fine; writable is not
    private.chmod(0o777)
    exc = _refusal()
    assert str(private) in exc.message and "they could replace it" in exc.message
    assert exc.hint == f"chmod go-w {private}"
    private.chmod(0o755)
    config(ServeOptions(port=free_port()))


def test_a_keyring_others_can_write_stops_the_server(mlctl_home: Path) -> None:
    ring = mlctl_home / "keyring.yaml"  # which keys a prod release may be signed with
    ring.write_text("environments: {}\n")
    ring.chmod(0o646)
    exc = _refusal()
    assert str(ring) in exc.message and "the signing keyring" in exc.message and exc.hint == f"chmod 600 {ring}"
    ring.chmod(0o600)
    config(ServeOptions(port=free_port()))


def test_a_postgres_password_in_the_url_stops_the_server(pg_database: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    with_password = pg_database.replace("mlctl@", "mlctl:s3cret@")
    monkeypatch.setenv("MLCTL_DB_URL", with_password)
    exc = _refusal()
    assert "carries the PostgreSQL password" in exc.message and "PGPASSFILE" in (exc.hint or "")
    assert "s3cret" not in exc.message + (exc.hint or "")
    lockdown.check(insecure_dev=True)  # a dev-only plain-HTTP server may (it never serves staging or prod)

    # The password from a PGPASSFILE instead: refused while others can read it, served once it is 0600.
    passfile = tmp_path / "pgpass"
    passfile.write_text("127.0.0.1:*:*:mlctl:s3cret\n")
    passfile.chmod(0o644)
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    monkeypatch.setenv("MLCTL_DB_URL", pg_database)
    exc = _refusal()
    assert "PGPASSFILE" in exc.message and exc.hint == f"chmod 600 {passfile}"
    passfile.chmod(0o600)
    import httpx

    with running() as url:
        ready = httpx.get(f"{url}/readyz", verify=ca.ssl_context()).json()
    assert ready["checks"]["store"] == "ok"  # the real PostgreSQL store, no password in the URL


def _identity_entries() -> list[audit.AuditEntry]:
    return [e for e in audit.entries() if e.action.startswith("identity.")]


def test_identity_file_changes_are_audited(oidc: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    import httpx
    import yaml

    ident = tmp_path / "identity.yaml"
    shutil.copy(oidc.provider.identity_file, ident)
    monkeypatch.setenv("MLCTL_IDENTITY_FILE", str(ident))

    def digest() -> str:
        return "sha256:" + hashlib.sha256(ident.read_bytes()).hexdigest()

    first = digest()
    with running() as url, httpx.Client(base_url=url, verify=ca.ssl_context()) as client:
        [loaded] = _identity_entries()
        assert (loaded.action, loaded.actor, loaded.digests) == ("identity.loaded", "mlctl-server",
                                                                 {"identity_file": first})
        assert loaded.details["issuers"] == [oidc.issuer]
        # An operator makes auditors approvers while the server runs: the next request records it,
        # before any token is verified with the new mapping.
        doc = yaml.safe_load(ident.read_text())
        doc["issuers"][0]["groups"]["mlctl-auditor"] = ["auditor", "approver"]
        ident.write_text(yaml.safe_dump(doc))
        second = digest()
        who = client.get("/v1/whoami", headers={"Authorization": f"Bearer {oidc.tokens_for('ali')['access_token']}"})
        assert who.status_code == 200 and "approver" in who.json()["roles"], who.text
        changed = _identity_entries()[-1]
        assert changed.action == "identity.changed" and changed.digests == {"identity_file": second}
        assert changed.details["previous"] == first
        client.get("/healthz")
        assert len(_identity_entries()) == 2  # no change, no entry
        # A broken edit is recorded as well, and requests are refused with its error, not a crash.
        good = ident.read_text()
        ident.write_text(good + "surprise: key\n")
        r = client.get("/v1/whoami", headers={"Authorization": f"Bearer {oidc.tokens_for('ali')['access_token']}"})
        assert r.status_code in (401, 403) and "surprise" in r.text, r.text
        broken = _identity_entries()[-1]
        assert broken.action == "identity.changed" and "surprise" in broken.details["invalid"]
        ident.write_text(good)
        client.get("/healthz")
        restored = _identity_entries()[-1]
        assert restored.digests == {"identity_file": second} and restored.details["issuers"] == [oidc.issuer]

    # Changed while no server ran: the next start compares with what the trail last recorded.
    ident.write_text(ident.read_text() + "\n# edited offline\n")
    with running():
        offline = _identity_entries()[-1]
    assert offline.action == "identity.changed" and offline.details["previous"] == second
    assert offline.digests == {"identity_file": digest()}
    with running():
        assert _identity_entries()[-1].action == "identity.loaded"  # unchanged since: just loaded
