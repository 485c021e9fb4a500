"""Register / show / list with every lineage pin, immutability, provenance, materialize and
concurrent registrations, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from control_plane import audit, registry
from control_plane.errors import Conflict, MlctlError, NotFound, PolicyViolation
from tests.registry.conftest import make_model, run_cli

SHA = "ab" * 32


def _full_register(model_dir: Path, tmp_path: Path, **kw: object) -> registry.ModelVersion:
    config = tmp_path / "train.yaml"
    config.write_text("epochs: 3\n")
    params = tmp_path / "params.json"
    params.write_text('{"lr": 0.01, "depth": 6}')
    metrics = tmp_path / "metrics.json"
    metrics.write_text('{"auc": 0.93}')
    return registry.register(
        "fraud", "1", model_dir, datasets=[f"s3://data/train.parquet@sha256:{SHA}", f"dvc://repo/x@dvc:{'c' * 40}"],
        features=["customer@12"], code_commit="deadbeefcafe", config=config, params=params, metrics=metrics,
        classification="pii", **kw,  # type: ignore[arg-type]
    )


def test_register_show_list_with_lineage(db_url: str, roles: Path, act_as: Callable[[str], None],
                                         model_dir: Path, tmp_path: Path) -> None:
    act_as("dana")
    mv = _full_register(model_dir, tmp_path)
    assert mv.created and mv.ref == "fraud:1" and mv.registered_by == "dana"
    assert set(mv.files) == {"config.json", "weights/part-0.bin", "weights/part-1.bin", "weights/part-2.bin"}
    assert all(len(d) == 64 for d in mv.files.values())
    from control_plane.signing import model_digests

    assert mv.root_digest == "sha256:" + model_digests(model_dir)[0]
    got = registry.get_version("fraud", "1")
    assert got == mv
    lin = got.lineage
    assert lin["datasets"][0]["digest"] == {"sha256": SHA}
    assert lin["datasets"][1]["digest"] == {"dvcCommit": "c" * 40}
    assert lin["features"] == [{"name": "customer", "version": "12"}]
    assert lin["code"] == {"commit": "deadbeefcafe", "source": "flag"}
    assert lin["params"] == {"lr": 0.01, "depth": 6} and lin["metrics"] == {"auc": 0.93}
    assert lin["config"]["file"] == "train.yaml" and Path(lin["config"]["uri"][7:]).read_text() == "epochs: 3\n"
    assert [v.ref for v in registry.list_versions()] == ["fraud:1"]
    assert registry.list_versions("other") == []
    # the registration is in the audit trail with its root digest
    entry = audit.entries()[-1]
    assert (entry.action, entry.subject, entry.actor, entry.digests["root"]) == (
        "model.register", "fraud:1", "dana", mv.root_digest)


def test_provenance_is_slsa_v1_about_the_signature_root(db_url: str, roles: Path, act_as: Callable[[str], None],
                                                       model_dir: Path, tmp_path: Path) -> None:
    act_as("eli")
    mv = _full_register(model_dir, tmp_path)
    stmt = mv.provenance
    assert stmt["_type"] == "https://in-toto.io/Statement/v1"
    assert stmt["predicateType"] == "https://slsa.dev/provenance/v1"
    assert stmt["subject"] == [{"name": "fraud:1", "digest": {"sha256": mv.root_hex}}]
    build = stmt["predicate"]["buildDefinition"]
    deps = {d["name"]: d for d in build["resolvedDependencies"] if d["name"] != "dataset"}
    datasets = [d for d in build["resolvedDependencies"] if d["name"] == "dataset"]
    assert datasets[0] == {"name": "dataset", "uri": "s3://data/train.parquet", "digest": {"sha256": SHA}}
    assert deps["code"]["digest"] == {"gitCommit": "deadbeefcafe"}
    assert deps["features"]["uri"] == "features://customer@12"
    assert build["externalParameters"]["params"] == {"lr": 0.01, "depth": 6}
    assert build["externalParameters"]["config"]["digest"]["sha256"] == mv.lineage["config"]["sha256"]
    # signing the model signs the provenance too, with the same key, as a DSSE envelope
    signed = registry.sign("fraud", "1")
    assert signed.signature.signed and signed.signature.provenance_signed
    result = registry.verify("fraud", "1")
    assert result.provenance == "verified" and result.key_id == signed.signature.key_id


def test_immutability(db_url: str, roles: Path, act_as: Callable[[str], None], model_dir: Path,
                      tmp_path: Path) -> None:
    act_as("eli")
    first = registry.register("m", "1", model_dir, code_commit="abc1234")
    copy = shutil.copytree(model_dir, tmp_path / "copy")
    again = registry.register("m", "1", copy, code_commit="abc1234")
    assert not again.created and again == first  # identical bytes: a no-op
    other = make_model(tmp_path / "other", seed="b")
    with pytest.raises(Conflict, match="already registered with other bytes"):
        registry.register("m", "1", other)
    assert registry.get_version("m", "1").root_digest == first.root_digest
    last = audit.entries()[-1]
    assert (last.action, last.decision) == ("model.register", "deny")


def test_code_commit_from_enclosing_git_repo(db_url: str, roles: Path, act_as: Callable[[str], None],
                                            tmp_path: Path) -> None:
    act_as("eli")
    repo = tmp_path / "repo"
    model = make_model(repo / "out" / "model")
    git = ["git", "-C", str(repo), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    mv = registry.register("g", "1", model)
    assert mv.lineage["code"]["commit"] == head and mv.lineage["code"]["source"] == "git"
    # outside any repository: recorded as unknown, and said so
    lone = make_model(Path(tmp_path.anchor) / "tmp" / f"lone-{tmp_path.name}")
    try:
        mv2 = registry.register("g", "2", lone)
        assert mv2.lineage["code"]["commit"] == "unknown" and "--code-commit" in mv2.lineage["code"]["note"]
    finally:
        shutil.rmtree(lone, ignore_errors=True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"datasets": ["s3://x"]}, "expected URI@DIGEST"),
        ({"datasets": ["s3://x@sha256:1234"]}, "sha256 digest '1234' is malformed"),
        ({"datasets": ["s3://x@crc32:1234"]}, "has no known algorithm"),
        ({"datasets": [f"lakefs://r/main@lakefs:{'z' * 64}"]}, "lakefs digest"),
        ({"features": ["customer"]}, "expected NAME@VERSION"),
        ({"code_commit": "not-a-sha"}, "is not a commit id"),
        ({"classification": "secret"}, "--classification 'secret' is not known"),
        ({"parent": "base:9"}, "--parent base:9: no such registered model version"),
        ({"parent": "base"}, "is not NAME:VERSION"),
        ({"params": "missing.json"}, "no such file"),
    ],
)
def test_bad_lineage_is_refused_with_a_fix(roles: Path, act_as: Callable[[str], None], model_dir: Path,
                                          kwargs: dict[str, object], message: str) -> None:
    act_as("eli")
    with pytest.raises(MlctlError) as exc:
        registry.register("m", "1", model_dir, **kwargs)  # type: ignore[arg-type]
    assert message in exc.value.message and exc.value.hint
    assert registry.list_versions() == []  # nothing half-registered


def test_lakefs_and_md5_dataset_pins(roles: Path, act_as: Callable[[str], None], model_dir: Path) -> None:
    act_as("eli")
    mv = registry.register("m", "1", model_dir, code_commit="abcdef1",
                           datasets=[f"lakefs://repo/main/t@lakefs:{'e' * 64}", f"dvc://r/d.dvc@md5:{'f' * 32}"])
    assert [d["digest"] for d in mv.lineage["datasets"]] == [{"lakefsCommit": "e" * 64}, {"md5": "f" * 32}]


def test_derived_version_and_materialize(db_url: str, roles: Path, act_as: Callable[[str], None],
                                         model_dir: Path, tmp_path: Path) -> None:
    act_as("eli")
    base = registry.register("m", "1", model_dir, code_commit="abcdef1")
    engine = make_model(tmp_path / "engine", seed="t", files=1)
    extra = {"optimizer": "tensorrt", "precision": "fp16", "tensorrt": "10.3", "gpu": "A10G",
             "compute_capability": "8.6", "container": "sha256:" + "1" * 64}
    derived = registry.register("m", "1-trt", engine, derived_from="m:1", lineage_extra=extra,
                                code_commit="abcdef1")
    assert derived.derived_from == "m:1"
    assert derived.lineage["derived_from"] == {"ref": "m:1", "root": base.root_hex}
    assert derived.lineage["extra"] == extra
    deps = {d["name"]: d for d in derived.provenance["predicate"]["buildDefinition"]["resolvedDependencies"]}
    assert deps["derived_from"]["digest"] == {"sha256": base.root_hex}
    out = registry.materialize("m", "1", tmp_path / "out")
    for rel in base.files:
        assert (out / rel).read_bytes() == (model_dir / rel).read_bytes()
    with pytest.raises(NotFound, match="m:9 is not registered") as exc:
        registry.get_version("m", "9")
    assert "1, 1-trt" in (exc.value.hint or "")


def test_tampered_store_copy_is_refused_on_materialize(roles: Path, act_as: Callable[[str], None],
                                                       model_dir: Path, tmp_path: Path) -> None:
    act_as("eli")
    mv = registry.register("m", "1", model_dir, code_commit="abcdef1")
    stored = Path(mv.artifact_uri[len("file://"):]) / "weights" / "part-1.bin"
    stored.chmod(0o644)
    stored.write_bytes(b"evil")
    from control_plane.errors import VerificationFailed

    with pytest.raises(VerificationFailed, match=r"'weights/part-1\.bin'.*does not match its registered sha256"):
        registry.materialize("m", "1", tmp_path / "out")


def test_register_requires_a_role(roles: Path, act_as: Callable[[str], None], model_dir: Path) -> None:
    act_as("amira")
    from control_plane.services import Context, models

    with pytest.raises(PolicyViolation, match=r"lacks permission 'model\.register'"):
        models.register(Context(), "m", "1", model_dir)
    assert registry.list_versions() == []


def test_cli_register_show_list(roles: Path, model_dir: Path, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    params = tmp_path / "p.json"
    params.write_text('{"lr": 0.1}')
    code, out, err = run_cli("--as", "dana", "model", "register", "fraud", "--version", "2", "--path",
                             str(model_dir), "--dataset", f"s3://d/t@sha256:{SHA}", "--features", "cust@1",
                             "--params", str(params), "--code-commit", "abcdef1", "-o", "json")
    assert code == 0, err
    assert json.loads(out)["created"] is True
    code, out, err = run_cli("model", "show", "fraud:2")
    assert code == 0 and "lineage" in out and "features cust@1" in out and "lr = 0.1" in out
    code, out, _ = run_cli("model", "list", "-o", "json")
    assert [v["ref"] for v in json.loads(out)] == ["fraud:2"]
    code, out, err = run_cli("model", "show", "fraud:3")
    assert code == 6 and "error: model fraud:3 is not registered" in err and "fix:" in err
    code, _, err = run_cli("--as", "dana", "model", "register", "fraud", "--version", "3", "--path",
                           str(model_dir), "--dataset", "s3://d/t@sha256:xyz")
    assert code == 2 and "sha256 digest 'xyz' is malformed" in err and "Traceback" not in err


_REGISTRAR = """
import sys
from pathlib import Path
from control_plane import registry
from control_plane.errors import Conflict
try:
    mv = registry.register("race", "1", Path(sys.argv[1]), code_commit="abcdef1")
    print("created" if mv.created else "noop", flush=True)
except Conflict:
    print("conflict", flush=True)
"""


@pytest.mark.parametrize("same_bytes", [False, True], ids=["different-bytes", "same-bytes"])
def test_concurrent_registrations_one_wins(db_url: str, roles: Path, mlctl_home: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch, same_bytes: bool) -> None:
    from control_plane.store import get_engine

    monkeypatch.setenv("MLCTL_ACTOR", "eli")
    get_engine()  # migrate once before the race
    dirs = [make_model(tmp_path / f"m{i}", seed="s" if same_bytes else f"s{i}") for i in range(3)]
    procs = [subprocess.Popen([sys.executable, "-c", _REGISTRAR, str(d)], stdout=subprocess.PIPE, text=True)
             for d in dirs]
    outcomes = sorted(p.communicate(timeout=180)[0].strip() for p in procs)
    assert all(p.returncode == 0 for p in procs)
    winners = [o for o in outcomes if o == "created"]
    assert len(winners) == 1, outcomes
    assert outcomes.count("noop" if same_bytes else "conflict") == 2, outcomes
    versions = registry.list_versions("race")
    assert len(versions) == 1
    # no partial objects: only the winner's bytes are in the store
    stored = mlctl_home / "artifacts" / "models" / "race" / "1"
    assert [p.name for p in stored.iterdir()] == [versions[0].root_hex]
    assert not any((mlctl_home / "artifacts" / ".staging").glob("*"))
    registry.materialize("race", "1", tmp_path / "out")
    assert audit.verify().ok
    registered = [e for e in audit.entries() if e.action == "model.register" and e.decision == "allow"]
    assert len(registered) == 1
