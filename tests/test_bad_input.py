"""The bad-input matrix of issue 15: each message and exit code a new user met, with the new
behaviour. mlctl runs in-process through ``main`` (its error formatting and exit codes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from control_plane.errors import EXIT_CODES
from tests.cli_runner import run_mlctl
from tests.registry.conftest import ROLES, make_model, run_cli

SHA = "ab" * 32


@pytest.fixture()
def home(mlctl_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from control_plane.access.roles import write_assignments

    for var in ("MLCTL_BLUEPRINT", "MLCTL_ARTIFACT_STORE", "MLCTL_ROLES_FILE", "NO_COLOR"):
        monkeypatch.delenv(var, raising=False)
    write_assignments(ROLES)
    return mlctl_home


def _register(capsys: pytest.CaptureFixture[str], path: Path, *extra: str) -> tuple[int, str, str]:
    return run_cli("--as", "eli", "model", "register", "digits", "--version", "1", "--path", str(path),
                   "--code-commit", "3f2c1e9", *extra)


def test_a_ref_without_version_is_a_usage_error_without_emoji(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = run_cli("--as", "eli", "model", "sign", "digits")
    assert code == 2
    assert "NAME:V: 'digits' is not NAME:VERSION" in err and "✌" not in err


def test_release_without_version_and_release_typos_are_usage_errors(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli("--as", "eli", "release", "digits")
    assert code == 2 and "not NAME:VERSION" in err
    code, _, err = run_cli("release", "statsu", "digits")
    assert code == 2 and "did you mean `mlctl release status`" in err
    code, out, _ = run_cli("release", "list", "-o", "json")
    assert code == 0 and json.loads(out) == []


def test_an_unregistered_version_is_not_registered_and_records_no_release(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli("--as", "eli", "release", "digits:99", "--env", "uae-local")
    assert code == 6 and "model digits:99 is not registered" in err and "gate" not in err
    code, out, _ = run_cli("release", "list", "--state", "REFUSED", "-o", "json")
    assert json.loads(out) == []


def test_an_unknown_environment_is_named_with_the_known_ones(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli("--as", "eli", "release", "digits:1", "--env", "uae-lcoal")
    assert code == 6
    assert "unknown environment 'uae-lcoal' (did you mean 'uae-local'?)" in err
    assert "residency" not in err and "uae-prod-aws" in err


def test_a_gate_refusal_prints_the_command_that_fixes_it(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _register(capsys, make_model(tmp_path / "m"))[0] == 0
    code, _, err = run_cli("--as", "eli", "release", "digits:1", "--env", "uae-local")
    assert code == 4 and "signature" in err
    assert "fix: mlctl model sign digits:1, then: mlctl release digits:1 --env uae-local" in err


def test_path_must_be_a_non_empty_directory(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "train.csv"
    csv.write_text("a,b\n1,2\n")
    code, _, err = _register(capsys, csv)
    assert code == 2 and "is a file, not a model directory" in err and f"--path {tmp_path}" in err
    empty = tmp_path / "emptydir"
    (empty / "sub").mkdir(parents=True)
    code, _, err = _register(capsys, empty)
    assert code == 2 and "holds no files" in err
    code, out, _ = run_cli("model", "list", "-o", "json")
    assert json.loads(out) == []


def test_same_bytes_with_other_lineage_is_refused(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = make_model(tmp_path / "m")
    assert _register(capsys, model)[0] == 0
    assert _register(capsys, model)[0] == 0  # identical bytes and lineage: a no-op
    code, _, err = _register(capsys, model, "--dataset", f"s3://d/train.csv@sha256:{SHA}")
    assert code == 7 and "same bytes" not in err
    assert "already registered with these bytes but other lineage (datasets:" in err and "--version 1.1" in err


def test_outside_git_the_code_pin_is_unrecorded_and_optimizable(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from control_plane.samples import build_sample_model

    model = build_sample_model(tmp_path / "digits", variant="v1")
    code, _, err = run_cli("--as", "eli", "model", "register", "digits", "--version", "1",
                           "--path", str(model.path))
    assert code == 0 and "pass --code-commit" in err
    assert run_cli("--as", "eli", "model", "sign", "digits:1")[0] == 0
    code, out, err = run_cli("--as", "eli", "model", "optimize", "digits:1", "--target", "onnx", "-o", "json")
    assert code == 0, err
    code, out, _ = run_cli("model", "show", "digits:1", "-o", "json")
    view = json.loads(out)
    assert [d["ref"] for d in view["derived"]] == ["digits:1+onnx"]
    code, out, _ = run_cli("model", "show", "digits:1+onnx", "-o", "json")
    assert json.loads(out)["lineage"]["code"]["commit"] == "unknown"


def test_a_malformed_roles_file_points_at_the_line(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (home / "roles.yaml").write_text("actors:\n  eli: [ml-engineer\n  amira: [approver]\n")
    code, _, err = _register(capsys, make_model(tmp_path / "m"))
    assert code == 2 and "not valid YAML at line" in err
    assert "create" not in err.lower()


def test_a_missing_column_is_schema_drift(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref, cur = tmp_path / "ref.csv", tmp_path / "cur.csv"
    ref.write_text("a,b,c\n" + "".join(f"{i % 7},{i % 5},{i % 3}\n" for i in range(200)))
    cur.write_text("a,b\n" + "".join(f"{i % 7},{i % 5}\n" for i in range(200)))
    code, out, _ = run_cli("monitor", "drift", "--reference", str(ref), "--current", str(cur),
                           "--fail-on-drift")
    assert code == 5 and "schema drift" in out and "no drift" not in out
    code, out, _ = run_cli("monitor", "drift", "--reference", str(ref), "--current", str(cur), "-o", "json")
    report = json.loads(out)
    assert report["drift_detected"] and report["schema_drift"][0]["feature"] == "c"


def test_flags_show_no_bool_metavar(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli("monitor", "drift", "--help")
    assert code == 0 and "--fail-on-drift" in out and "<bool>" not in out


def test_audit_export_refuses_a_missing_directory_and_writes_dash_to_stdout(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _register(capsys, make_model(tmp_path / "m"))[0] == 0
    missing = tmp_path / "missing" / "dir" / "t.jsonl"
    code, _, err = run_cli("--as", "ali", "audit", "export", str(missing))
    assert code == 6 and "does not exist" in err and not missing.parent.exists()
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_cli("--as", "ali", "audit", "export", "-")
    assert code == 0 and not (tmp_path / "-").exists()
    lines = [json.loads(line) for line in out.splitlines()]
    assert "model.register" in [line["action"] for line in lines]
    code, out, _ = run_cli("--as", "ali", "audit", "export", "-", "--actor", "nobody")
    assert code == 0 and out == ""


def test_json_errors_are_json_on_stderr(home: Path) -> None:
    captured = run_mlctl("model", "show", "digits:1", "-o", "json", in_process=True)
    assert captured.returncode == 6 and captured.stdout == ""
    err = json.loads(captured.stderr)["error"]
    assert err["kind"] == "NotFound" and err["exit_code"] == 6 and "not registered" in err["message"]
    typo = run_mlctl("model", "shw", "-o", "json", in_process=True)
    assert typo.returncode == 2 and json.loads(typo.stderr)["error"]["kind"] == "UsageError"


def test_the_exit_code_table_is_in_help_and_readme(capsys: pytest.CaptureFixture[str]) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code, out, _ = run_cli("--help")
    assert code == 0
    for number, name, meaning in EXIT_CODES:
        assert f"| {number} | {name} | {meaning} |" in readme
        assert f"{number} {name}:" in out
