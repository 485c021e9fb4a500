"""`mlctl login` / `whoami` / `logout` end to end: the real CLI process runs the device flow
against the real provider while the test confirms the code at the provider's pages over HTTP."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from control_plane.emulator.idp.devlogin import complete_device_login
from tests.cli_runner import start_mlctl
from tests.registry.conftest import run_cli

REPO = Path(__file__).resolve().parents[2]


def test_device_login_whoami_logout(oidc: Any, mlctl_home: Path, capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    proc = start_mlctl("login", "-o", "json", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       env={"PYTHONPATH": str(REPO)})
    assert proc.stdout is not None
    prompt_lines = []
    buf = ""
    while "}" not in buf:  # the first JSON document is the prompt: URL and code
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else ""
        buf += line
    prompt = json.loads(buf)
    prompt_lines.append(buf)
    assert prompt["verification_uri"].startswith(oidc.issuer) and re.match(r"^[A-Z]{4}-[A-Z]{4}$", prompt["user_code"])
    assert prompt["interval"] == 5  # the provider names none: RFC 8628's default
    started = time.monotonic()
    complete_device_login(prompt["verification_uri_complete"], "amira")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert time.monotonic() - started >= 4  # it waited the interval before polling, not hammering
    who = json.loads(out)
    assert (who["actor"], who["source"], who["kind"], who["roles"]) == ("amira", "verified", "person", ["approver"])

    cache = mlctl_home / "tokens.json"
    assert cache.stat().st_mode & 0o777 == 0o600
    token = json.loads(cache.read_text())["access_token"]
    assert token not in out + err + "".join(prompt_lines)  # never printed

    code, out, err = run_cli("whoami")
    assert code == 0 and "amira" in out and "approver" in out and oidc.issuer in " ".join(out.split())
    assert token not in out + err

    cache.chmod(0o644)  # a cache others can read is refused, not used
    code, out, err = run_cli("whoami")
    assert code == 4 and "readable by others" in err and "mlctl logout" in err
    cache.chmod(0o600)

    code, out, err = run_cli("logout")
    assert code == 0 and "logged out" in out and not cache.exists()
    monkeypatch.setenv("MLCTL_ACTOR", "eli")
    code, out, err = run_cli("whoami", "-o", "json")
    assert json.loads(out)["source"] == "asserted"


def test_client_credentials_login(oidc: Any, mlctl_home: Path, capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    cid, secret = oidc.provider.workload_secret()
    monkeypatch.setenv("MLCTL_CLIENT_ID", cid)
    monkeypatch.setenv("MLCTL_CLIENT_SECRET", secret)
    code, out, err = run_cli("login", "--client-credentials", "-o", "json")
    assert code == 0, err
    who = json.loads(out)
    assert (who["actor"], who["kind"], who["client"], who["roles"]) == ("ci-pipeline", "workload", "ci-pipeline",
                                                                        ["ml-engineer"])
    assert secret not in out + err
    monkeypatch.setenv("MLCTL_CLIENT_SECRET", "wrong")
    code, out, err = run_cli("login", "--client-credentials")
    assert code == 4 and "refused the client credentials" in err


def test_expiring_token_is_refreshed(oidc: Any, mlctl_home: Path) -> None:
    from control_plane import identity
    from control_plane.identity import tokens

    oidc.login("omar")
    cached = tokens.load()
    assert cached is not None and cached.refresh_token
    tokens.save(tokens.CachedTokens(**{**cached.__dict__, "expires_at": int(time.time())}))  # due now
    me = identity.current()
    assert me.is_verified and me.name == "omar"
    fresh = tokens.load()
    assert fresh is not None and fresh.access_token != cached.access_token and not fresh.expiring
