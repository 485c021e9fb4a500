"""`mlctl model` through `mlctl server` (MLCTL_SERVER), over HTTPS with real tokens from the real
OpenID provider: each verb gives what the local command gives (same JSON, same exit codes), RBAC
refusals come back as 403 with the local message, bad input gets the clear local error, and
`register` / `export` move the model bytes (upload tar, 413 over the limit; verified download)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from control_plane import audit, registry
from tests.cli_runner import run_mlctl
from tests.registry.conftest import make_model
from tests.server.conftest import Api, both


@pytest.fixture()
def served(api: Api, signed_fraud: str, monkeypatch: pytest.MonkeyPatch) -> Api:
    monkeypatch.setenv("MLCTL_SERVER", api.url)
    return api



def test_list_and_show_are_the_local_views(served: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    served.oidc.login("amira")
    through, here = both(monkeypatch, served, "model", "list", "-o", "json")
    assert through.returncode == here.returncode == 0, through
    assert through.json() == here.json() and [v["ref"] for v in through.json()] == ["fraud:1"]
    through, here = both(monkeypatch, served, "model", "show", "fraud:1", "-o", "json")
    assert through.json() == here.json() and through.json()["signature"]["signed_by"] == "eli"
    through, here = both(monkeypatch, served, "model", "show", "fraud:1")
    assert through.stdout == here.stdout and "signed by eli" in through.stdout
    through, here = both(monkeypatch, served, "model", "list", "--actor", "nobody", "-o", "json")
    assert through.json() == here.json() == []


def test_an_unknown_version_is_the_local_error(served: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    served.oidc.login("amira")
    for verb in ("show", "verify"):
        through, here = both(monkeypatch, served, "model", verb, "fraud:9")
        assert through.returncode == here.returncode == 6, through
        assert "fraud:9 is not registered" in through.stderr and through.stderr == here.stderr
    through, here = both(monkeypatch, served, "model", "sign", "fraud:9")  # amira may not sign: refused first
    assert through.returncode == here.returncode == 4 and through.stderr == here.stderr, through
    served.oidc.login("eli")
    through, here = both(monkeypatch, served, "model", "sign", "fraud:9", "-o", "json")
    assert through.returncode == here.returncode == 6 and through.stderr == here.stderr, through


def test_sign_needs_the_permission_on_the_verified_identity(served: Api, monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path) -> None:
    served.oidc.login("dana")  # a data scientist registers, and may not sign
    registry.register("fraud", "2", make_model(tmp_path / "m2", "b"), code_commit="abcdef1")
    r = run_mlctl("model", "sign", "fraud:2", "-o", "json", in_process=True)
    assert r.returncode == 4, r
    assert "actor 'dana' (roles: data-scientist) lacks permission 'model.sign'" in r.stderr
    assert json.loads(r.stderr)["error"]["kind"] == "PolicyViolation"
    assert not registry.get_version("fraud", "2").signature.signed
    denied = [e for e in audit.entries() if e.action == "model.sign" and e.decision == "deny"]
    assert denied[-1].actor == "dana" and denied[-1].details["identity"]["source"] == "verified"

    served.oidc.login("eli")
    signed = run_mlctl("model", "sign", "fraud:2", "-o", "json", in_process=True, check=True).json()
    assert signed == registry.get_version("fraud", "2").as_dict()
    assert (signed["signature"]["signer_kind"], signed["signature"]["signed_by"]) == ("local-dev", "eli")
    table = run_mlctl("model", "sign", "fraud:2", in_process=True, check=True)
    assert "signed fraud:2" in table.stdout and "DEVELOPMENT key" in table.stderr  # the local view's note


def test_verify_is_the_local_result_and_catches_tampering(served: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    served.oidc.login("ali")  # reading needs no permission
    through, here = both(monkeypatch, served, "model", "verify", "fraud:1", "-o", "json")
    assert through.returncode == here.returncode == 0, through
    assert through.json() == here.json() and through.json()["verified"] is True
    r = run_mlctl("model", "verify", "fraud:1", "--path", ".", in_process=True)
    assert r.returncode == 2 and "--path and --bundle verify files on this machine" in r.stderr

    stored = Path(registry.get_version("fraud", "1").artifact_uri[len("file://"):]) / "config.json"
    stored.chmod(0o644)
    stored.write_bytes(b'{"arch": "tampered"}')
    through, here = both(monkeypatch, served, "model", "verify", "fraud:1")
    assert through.returncode == here.returncode == 8, through
    assert "config.json" in through.stderr and through.stderr == here.stderr


def test_register_uploads_the_directory_with_its_lineage(served: Api, monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    served.oidc.login("dana")
    model = make_model(tmp_path / "digits", "d")
    (tmp_path / "params.json").write_text('{"lr": 0.01}')
    (tmp_path / "train.yaml").write_text("epochs: 3\n")
    flags = ("--path", str(model), "--dataset", "s3://bucket/train.csv@sha256:" + "ab" * 32,
             "--features", "fraud-features@3", "--params", str(tmp_path / "params.json"),
             "--config", str(tmp_path / "train.yaml"), "--code-commit", "abcdef1", "-o", "json")
    out = run_mlctl("model", "register", "digits", "--version", "1", *flags, in_process=True, check=True).json()
    mv = registry.get_version("digits", "1")
    assert out["created"] is True and {**mv.as_dict(), "created": True} == out
    assert mv.registered_by == "dana" and mv.lineage["params"] == {"lr": 0.01}
    assert mv.lineage["config"]["file"] == "train.yaml" and mv.lineage["code"]["commit"] == "abcdef1"
    assert [d["ref"] for d in mv.lineage["datasets"]] == ["s3://bucket/train.csv@sha256:" + "ab" * 32]

    monkeypatch.delenv("MLCTL_SERVER")
    local = run_mlctl("model", "register", "digits", "--version", "2", *flags, in_process=True, check=True).json()
    monkeypatch.setenv("MLCTL_SERVER", served.url)
    assert set(local) == set(out) and local["root_digest"] == out["root_digest"] and local["files"] == out["files"]

    same = run_mlctl("model", "register", "digits", "--version", "1", *flags, in_process=True, check=True).json()
    assert same["created"] is False and same["root_digest"] == out["root_digest"]
    other = make_model(tmp_path / "other", "x")
    r = run_mlctl("model", "register", "digits", "--version", "1", "--path", str(other), "--code-commit", "abcdef1",
                  in_process=True)
    assert r.returncode == 7 and "digits:1" in r.stderr  # a version is immutable, as locally
    assert registry.get_version("digits", "1").root_digest == out["root_digest"]


def test_register_refusals_and_bad_input(served: Api, tmp_path: Path) -> None:
    model = make_model(tmp_path / "m", "r")
    served.oidc.login("ali")  # an auditor registers nothing
    r = run_mlctl("model", "register", "risk", "--version", "1", "--path", str(model), "--code-commit", "abcdef1",
                  in_process=True)
    assert r.returncode == 4 and "actor 'ali' (roles: auditor) lacks permission 'model.register'" in r.stderr
    served.oidc.login("dana")
    r = run_mlctl("model", "register", "risk", "--version", "1", "--path", str(tmp_path / "nope"), in_process=True)
    assert r.returncode == 2 and "--path" in r.stderr and "not a directory" in r.stderr
    r = run_mlctl("model", "register", "risk", "--version", "1", "--path", str(model), "--dataset", "no-digest",
                  "--code-commit", "abcdef1", in_process=True)
    assert r.returncode == 2 and "no-digest" in r.stderr, r
    r = run_mlctl("model", "register", "risk", "--version", "1", "--path", str(model), "--classification", "secret",
                  in_process=True)
    assert r.returncode == 2 and "--classification 'secret' is not known" in r.stderr
    assert [v.ref for v in registry.list_versions("risk")] == []


def test_an_upload_over_the_limit_is_refused_with_413(served: Api, monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    monkeypatch.setenv("MLCTL_SERVER_MAX_UPLOAD_MB", "1")
    big = tmp_path / "big"
    big.mkdir()
    (big / "weights.bin").write_bytes(b"\x01" * (2 * 1024 * 1024))
    served.oidc.login("dana")
    r = run_mlctl("model", "register", "big", "--version", "1", "--path", str(big), "--code-commit", "abcdef1",
                  in_process=True)
    assert r.returncode == 2 and "over this server's limit of 1 MiB" in r.stderr, r
    assert "MLCTL_SERVER_MAX_UPLOAD_MB" in r.stderr
    raw = served.call("PUT", "/v1/models/big/1", served.token("dana"), content=b"\0" * (2 * 1024 * 1024))
    assert raw.status_code == 413 and raw.json()["error"]["kind"] == "UploadTooLarge"
    assert registry.list_versions("big") == []


def _tar(*members: tarfile.TarInfo) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for m in members:
            tar.addfile(m, io.BytesIO(b"{}") if m.isfile() else None)
    return buf.getvalue()


def test_a_malformed_upload_is_refused_and_writes_nothing(served: Api) -> None:
    token = served.token("dana")
    request = tarfile.TarInfo("request.json")
    request.size = 2
    link = tarfile.TarInfo("model/escape")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    for body, says in ((b"not a tar", "not a tar archive"), (_tar(request, link), "not a plain file"),
                       (_tar(request), "no model/ directory")):
        r = served.call("PUT", "/v1/models/evil/1", token, content=body)
        assert r.status_code == 422 and says in r.json()["error"]["message"], r.text
    assert registry.list_versions("evil") == []


def test_export_downloads_the_verified_bundle(served: Api, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    served.oidc.login("ali")  # auditors may export
    out = run_mlctl("model", "export", "fraud:1", str(tmp_path / "remote"), "-o", "json", in_process=True,
                    check=True).json()
    monkeypatch.delenv("MLCTL_SERVER")
    local = run_mlctl("model", "export", "fraud:1", str(tmp_path / "local"), "-o", "json", in_process=True,
                      check=True).json()
    assert set(out) == set(local)
    assert {k: out[k] for k in ("ref", "root_digest", "key_id", "files")} == \
        {k: local[k] for k in ("ref", "root_digest", "key_id", "files")}
    assert out["directory"] == str(tmp_path / "remote") and Path(out["public_key"]) == tmp_path / "remote.pub.pem"
    assert sorted(p.name for p in (tmp_path / "remote").rglob("*")) == sorted(p.name for p in (tmp_path / "local").rglob("*"))
    assert (tmp_path / "remote").stat().st_mode & 0o777 == 0o700
    checked = run_mlctl("model", "verify", "--bundle", out["signature"], "--public-key", out["public_key"],
                        "-o", "json", in_process=True, check=True).json()
    assert checked["root_digest"] == out["root_digest"]
    monkeypatch.setenv("MLCTL_SERVER", served.url)

    r = run_mlctl("model", "export", "fraud:1", str(tmp_path / "remote"), in_process=True)
    assert r.returncode == 7 and "exists and is not an empty directory" in r.stderr
    r = run_mlctl("model", "export", "fraud:9", str(tmp_path / "nine"), in_process=True)
    assert r.returncode == 6 and "fraud:9" in r.stderr and not (tmp_path / "nine").exists()
    served.oidc.login("dana")  # a data scientist may not take the bytes away
    r = run_mlctl("model", "export", "fraud:1", str(tmp_path / "dana"), in_process=True)
    assert r.returncode == 4 and "lacks permission 'model.export'" in r.stderr
    assert not (tmp_path / "dana").exists() and not (tmp_path / "dana.pub.pem").exists()


def test_release_history_goes_through_the_server_too(served: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    served.oidc.login("amira")
    through, here = both(monkeypatch, served, "release", "history", "digits")
    assert through.returncode == here.returncode == 6 and through.stderr == here.stderr, through
    assert "no release of digits is recorded" in through.stderr
    r = served.call("GET", "/v1/releases/digits/history", served.token("amira"))
    assert r.status_code == 404 and r.json()["error"]["exit_code"] == 6
