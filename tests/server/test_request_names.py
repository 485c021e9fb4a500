"""A request names the server's environments and blueprints, never files: every ``env`` /
``blueprint`` a request carries is a bare name (``environments.served_name``), checked while the
request is parsed (``server.names``), so a path, a dotted file name, a name with a slash or an empty
one is a 422 naming the field and the fix, an unknown name a 404 listing the server's, and nothing
is started, changed or audited first. Over HTTPS against the real server with real tokens; the CLI
under ``MLCTL_SERVER`` refuses such a flag itself (exit 2) instead of sending a file's stem."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from control_plane import approvals, audit, pipelines
from control_plane.release import repository
from control_plane.server import operations
from control_plane.services import transfer
from control_plane.settings import BLUEPRINTS_DIR
from tests.cli_runner import run_mlctl
from tests.registry.conftest import make_model
from tests.server.conftest import Api

S3_DATASET = f"s3://mlctl-data/k.csv@sha256:{'ab' * 32}"


@pytest.fixture()
def served(api: Api, signed_fraud: str, monkeypatch: pytest.MonkeyPatch) -> Api:
    monkeypatch.setenv("MLCTL_SERVER", api.url)
    return api


@pytest.fixture()
def lookalike(tmp_path: Path) -> Path:
    """A blueprint file the server was never given: uae-prod-aws's content declared dev tier (no
    approvals needed), what a caller pointing the server at a file would use."""
    data = yaml.safe_load((BLUEPRINTS_DIR / "uae-prod-aws.yaml").read_text())
    data.update(tier="dev")
    path = tmp_path / "prod-lookalike.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _bad_names(lookalike: Path) -> list[str]:
    return [
        str(lookalike),  # an absolute path to a file that loads
        str(BLUEPRINTS_DIR / "uae-prod-aws.yaml"),  # an absolute path to the server's own blueprint
        "../../blueprints/uae-prod-aws",  # a relative path with ..
        "uae-local.yaml",  # a file name
        "blueprints/uae-local",  # a name with a slash
        "",  # empty
    ]


def _state() -> dict[str, Any]:
    """What a refused request must leave as it was: the audit trail, approvals, releases, pipeline
    runs and the server's background operations."""
    with operations._lock:
        ops = sorted(operations._operations)
    return {
        "audit": [(e.action, e.subject, e.decision) for e in audit.entries()],
        "approvals": [(a.approver, a.environment) for env in ("uae-prod-aws", "uae-local", "uae-prodsim-local")
                      for a in approvals.approvals_for("fraud", "1", env)],
        "releases": repository.latest_release("fraud"),
        "runs": [r.run_id for r in pipelines.list_runs()],
        "operations": ops,
    }


def _register_upload(tmp_path: Path, env: str) -> bytes:
    request = {"datasets": [], "features": [], "code": "abcdef1", "params": None, "metrics": None,
               "parent": None, "classification": "internal", "store": None, "env": env}
    archive = transfer.pack_upload(request, make_model(tmp_path / "upload-model"), None, tmp_path / "up.tar")
    return archive.read_bytes()


def _call(api: Api, token: str, method: str, path: str, kw: dict[str, Any]) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}", **kw.pop("headers", {})}
    return api.client.request(method, path, headers=headers, **kw)


def _requests(name: str, tmp_path: Path) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(user, method, path, httpx keywords) per route group, each naming ``name`` as its env/blueprint."""
    return [
        ("amira", "POST", "/v1/models/fraud/1/approvals", {"json": {"env": name}}),  # state-changing
        ("eli", "POST", "/v1/releases", {"json": {"model": "fraud:1", "env": name, "config": {}}}),
        ("eli", "POST", "/v1/models/fraud/1/signatures", {"json": {"signer": "kms", "env": name}}),
        ("pat", "GET", "/v1/local", {"params": {"env": name}}),  # a read: the embedded environment's status
        ("pat", "POST", "/v1/local/up", {"json": {"env": name}}),
        ("dana", "PUT", "/v1/models/fraud/7", {  # a model route: the register upload's request.json
            "content": _register_upload(tmp_path, name), "headers": {"Content-Type": "application/x-tar"}}),
        ("eli", "POST", "/v1/models/fraud/1/validation", {"json": {"env": name}}),  # monitor routes
        ("eli", "POST", "/v1/models/fraud/1/optimizations", {"json": {"env": name, "target": "onnx"}}),
        ("eli", "POST", "/v1/pipelines/digits/runs", {"json": {"dataset": S3_DATASET, "env": name}}),  # pipelines
        ("eli", "POST", "/v1/pipelines/digits/watches", {"json": {"env": name}}),
        ("pat", "POST", "/v1/infra/plan", {"json": {"blueprint": name}}),  # infra
    ]


def test_a_path_dotted_slashed_or_empty_name_is_a_422_and_changes_nothing(served: Api, lookalike: Path,
                                                                          tmp_path: Path) -> None:
    tokens = {user: served.token(user) for user in ("amira", "eli", "pat", "dana")}
    before = _state()
    for name in _bad_names(lookalike):
        for user, method, path, kw in _requests(name, tmp_path):
            r = _call(served, tokens[user], method, path, kw)
            field = "blueprint" if path.startswith("/v1/infra") else "env"
            assert r.status_code == 422, (name, path, r.text)
            error = r.json()["error"]
            assert (error["kind"], error["exit_code"]) == ("UsageError", 2), (name, path, error)
            assert error["message"].startswith(f"{field} {name!r}: the server takes a blueprint name, not a path"), \
                (name, path, error)
            assert "by name" in error["hint"] and "e.g. uae-local" in error["hint"], (name, path, error)
    assert _state() == before  # nothing approved, released, registered, run, started or audited
    assert served.call("GET", "/v1/models/fraud/7", tokens["eli"]).status_code == 404  # not registered


def test_an_unknown_name_is_a_404_naming_the_servers_environments(served: Api, tmp_path: Path) -> None:
    tokens = {user: served.token(user) for user in ("amira", "eli", "pat", "dana")}
    before = _state()
    for user, method, path, kw in _requests("uae-nowhere", tmp_path):
        if path.startswith("/v1/infra"):
            continue  # a blueprint's existence is infra's own check (tests/server/test_remote_infra.py)
        r = _call(served, tokens[user], method, path, kw)
        assert r.status_code == 404, (path, r.text)
        error = r.json()["error"]
        assert error["message"] == "env 'uae-nowhere': the server has no environment of that name", (path, error)
        assert "uae-local" in error["hint"] and "uae-prod-aws" in error["hint"], (path, error)
        assert str(BLUEPRINTS_DIR) not in error["message"] + error["hint"]  # no server paths in the answer
    assert _state() == before


def test_good_names_still_work_including_an_environment_inside_a_multicloud_blueprint(served: Api) -> None:
    token = served.token("amira")
    r = served.call("POST", "/v1/models/fraud/1/approvals", token, json={"env": "uae-prod-aws"})
    assert r.status_code == 200 and r.json()["approvers"] == ["amira"], r.text
    # uae-mc-aws is no file: an environment of blueprints/uae-multicloud.yaml, by its name
    assert not (BLUEPRINTS_DIR / "uae-mc-aws.yaml").exists()
    r = served.call("POST", "/v1/models/fraud/1/approvals", token, json={"env": "uae-mc-aws"})
    assert r.status_code == 200, r.text
    assert [a.approver for a in approvals.approvals_for("fraud", "1", "uae-mc-aws")] == ["amira"]


@pytest.mark.parametrize("args, flag", [
    (("approve", "fraud:1", "--env", "./prod-lookalike.yaml"), "--env"),
    (("release", "fraud:1", "--env", "/tmp/prod-lookalike.yaml"), "--env"),
    (("model", "validate", "fraud:1", "--env", "uae-local.yaml"), "--env"),
    (("model", "sign", "fraud:1", "--signer", "kms", "--blueprint", "blueprints/uae-prod-aws.yaml"), "--blueprint"),
    (("model", "optimize", "fraud:1", "--blueprint", "../prod-lookalike.yaml"), "--blueprint"),
    (("local", "up", "--blueprint", "./mine.yaml"), "--blueprint"),
    (("local", "status", "--blueprint", "/tmp/mine.yaml"), "--blueprint"),
    (("pipeline", "watch", "digits", "--once", "--env", "x/uae-local"), "--env"),
])
def test_the_cli_under_a_server_refuses_a_file_for_a_name_itself(served: Api, args: tuple[str, ...],
                                                                 flag: str) -> None:
    served.oidc.login("amira")
    before = _state()
    r = run_mlctl(*args, in_process=True)
    given = args[args.index(flag) + 1]
    given = str(Path(given)) if flag == "--blueprint" else given  # a Path option: ./x.yaml reads x.yaml
    assert r.returncode == 2 and r.stdout == "", r
    # the CLI's own refusal (the server's 422 reads "the server takes a blueprint name"): nothing was sent
    assert f"{flag} {given}: through a server an environment is named, not a file" in r.stderr, r
    assert f"{flag} uae-local" in r.stderr and "unset MLCTL_SERVER" in r.stderr, r
    assert _state() == before
