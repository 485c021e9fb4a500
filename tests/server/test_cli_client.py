"""The CLI as a client of `mlctl server` (MLCTL_SERVER): the same commands, the same JSON and exit
codes, but the server verifies the token and acts; commands it does not serve yet refuse clearly."""

from __future__ import annotations

import pytest

from control_plane import approvals, cli
from tests.cli_runner import run_mlctl
from tests.server.conftest import Api


@pytest.fixture()
def through_server(api: Api, signed_fraud: str, monkeypatch: pytest.MonkeyPatch) -> Api:
    monkeypatch.setenv("MLCTL_SERVER", api.url)
    return api


def test_whoami_and_approve_go_through_the_server(through_server: Api) -> None:
    through_server.oidc.login("amira")
    who = run_mlctl("whoami", "-o", "json", in_process=True, check=True).json()
    assert (who["actor"], who["source"], who["issuer"]) == ("amira", "verified", through_server.oidc.issuer)
    out = run_mlctl("approve", "fraud:1", "--env", "uae-prod-aws", "-o", "json", in_process=True, check=True).json()
    assert out["approvers"] == ["amira"] and not out["allowed"] and out["tier"] == "prod"
    assert [a.approver for a in approvals.approvals_for("fraud", "1", "uae-prod-aws")] == ["amira"]
    table = run_mlctl("approve", "fraud:1", "--env", "uae-prod-aws", in_process=True, check=True)
    assert "approval recorded for fraud:1 in uae-prod-aws (prod tier); release not yet allowed" in table.stdout


def test_server_errors_come_back_as_the_local_command_would_show_them(through_server: Api) -> None:
    through_server.oidc.login("ali")  # an auditor
    r = run_mlctl("approve", "fraud:1", "--env", "uae-prod-aws", "-o", "json", in_process=True)
    assert r.returncode == 4 and "actor 'ali' (roles: auditor) lacks permission 'approve'" in r.stderr
    r = run_mlctl("release", "status", "digits", in_process=True)
    assert r.returncode == 6 and "no release of digits is recorded" in r.stderr


def test_what_the_server_does_not_serve_is_refused_not_run_here(through_server: Api) -> None:
    through_server.oidc.login("amira")
    # Since issue 11 every command group is served or local by nature; the guard stays for the next
    # group someone adds without saying where it runs (deny by default): take one out of the table.
    with pytest.MonkeyPatch.context() as mp:
        mp.delitem(cli.REMOTE_COMMANDS, "local")
        r = run_mlctl("local", "status", in_process=True)
    assert r.returncode == 2 and "`mlctl local` does not run through the API server yet" in r.stderr
    # the refusal lists what is served
    assert "model (export, list, optimize, register, show, sign, validate, verify)" in r.stderr
    assert "infra" in r.stderr.split("on this machine either way")[0]
    r = run_mlctl("monitor", "replay", in_process=True)  # served now: the server's dead letters (none here)
    assert r.returncode == 0 and "delivered 0, still failing 0" in r.stdout, r
    r = run_mlctl("blueprint", "validate", "blueprints/uae-local.yaml", in_process=True)  # files only: here
    assert r.returncode == 0, r
    r = run_mlctl("--as", "amira", "approve", "fraud:1", "--env", "uae-local", in_process=True)
    assert r.returncode == 2 and "--as cannot be used with a server" in r.stderr


def test_not_logged_in(through_server: Api) -> None:
    r = run_mlctl("whoami", in_process=True)
    assert r.returncode == 4 and "you are not logged in" in r.stderr and "mlctl login" in r.stderr


def test_every_command_says_where_it_runs_under_a_server() -> None:
    """No command falls through to the refusal: each is served, translated or local by nature
    (REMOTE_COMMANDS / WORKSTATION_COMMANDS), so `MLCTL_SERVER` reaches every verb."""
    import typer.main

    root = typer.main.get_command(cli.app)
    unplaced = []
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        subs = list(getattr(command, "commands", None) or [None])
        for sub in subs:
            placed = any(name in table and (table[name] is None or sub in (table[name] or ()))
                         for table in (cli.REMOTE_COMMANDS, cli.WORKSTATION_COMMANDS))
            if not placed:
                unplaced.append(f"{name} {sub or ''}".strip())
    assert unplaced == []
