"""Unsigned, tampered, unapproved and out-of-region releases are refused before anything is
applied; every refusal names its gate and is in the audit trail."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml

from blueprints import load_environment
from control_plane import audit
from control_plane.drivers import gateway
from control_plane.drivers.local import LocalDriver
from control_plane.release.gates import GateRefused, check_residency
from control_plane.settings import BLUEPRINTS_DIR
from tests.release.helpers import FAST, mlctl, mlctl_json


def _nothing_applied(home: Path) -> None:
    assert LocalDriver().deployed("digits") == {}
    assert gateway.routes("digits") == {}
    assert not list((home / "run").glob("model-*.pid")) if (home / "run").exists() else True


def _denied(action: str) -> list[audit.AuditEntry]:
    return [e for e in audit.entries() if e.action == action and e.decision == "deny"]


def test_unsigned_release_is_refused(world):
    world.register("5", "v1", sign=False)
    code, view = mlctl_json("release", "digits:5", *FAST)
    assert code == 4 and view["state"] == "REFUSED"
    assert any(r.startswith("signature:") and "not signed" in r for r in view["reasons"]), view["reasons"]
    assert "GREEN_APPLIED" not in {t["to"] for t in view["transitions"]}
    _nothing_applied(world.home)
    assert any(e.details.get("to") == "REFUSED" for e in _denied("release.transition"))
    code, out, _ = mlctl("release", "status", "digits")  # the human view names state and reason
    assert code == 4 and "REFUSED" in out and "not signed" in out  # the exit code is the state's


def test_tampered_artifact_is_refused(world):
    store = world.home / "artifacts" / "models" / "digits" / "2"
    target = next(store.rglob("model.onnx"))
    os.chmod(target.parent, stat.S_IRWXU)
    os.chmod(target, stat.S_IRUSR | stat.S_IWUSR)
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit
    target.write_bytes(bytes(data))
    code, view = mlctl_json("release", "digits:2", *FAST)
    assert code == 4 and view["state"] == "REFUSED"
    assert any(r.startswith("signature:") and "model.onnx" in r for r in view["reasons"]), view["reasons"]
    _nothing_applied(world.home)


def _local_env(tmp_path: Path, name: str, **changes: object) -> Path:
    data = yaml.safe_load((BLUEPRINTS_DIR / "uae-local.yaml").read_text())
    data.update(name=name, **changes)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_unapproved_release_is_refused_until_approved(world, tmp_path, monkeypatch, oidc, aws_emulator):
    from control_plane import registry
    from tests.release.test_keyring import _kms_signing_key

    staging = _local_env(tmp_path, "uae-staging-local", tier="staging")
    # staging trusts the environment's KMS key, not the development key: sign digits:3 with it
    _kms_signing_key(aws_emulator, "uae-staging-local")
    world.register("3", "v1", sign=False)
    registry.sign("digits", "3", signer_kind="kms", env=load_environment(staging))
    # eli is an ml-engineer by the roles file, but `--as` is only an assertion: refused in staging
    code, _out, err = mlctl("release", "digits:3", "--env", str(staging), *FAST)
    assert code == 4 and "(staging tier) needs a server-verified identity" in err
    _nothing_applied(world.home)

    oidc.login("eli")  # now verified: the approvals gate decides
    code, view = mlctl_json("release", "digits:3", "--env", str(staging), *FAST)
    assert code == 4 and view["state"] == "REFUSED"
    assert any(r.startswith("approvals:") and "staging needs 1 approval" in r for r in view["reasons"]), view
    _nothing_applied(world.home)

    oidc.login("amira")
    code, _, err = mlctl("approve", "digits:3", "--env", str(staging))
    assert code == 0, err
    oidc.login("eli")
    code, view = mlctl_json("release", "digits:3", "--env", str(staging), *FAST)
    assert code == 0 and view["state"] == "DONE", view


def test_environment_tier_is_declared_not_guessed(world, tmp_path):
    # Named like production but declared dev: the dev rule applies (no approvals, --as allowed) ...
    looks_prod = _local_env(tmp_path, "uae-prod-lookalike", tier="dev")
    code, view = mlctl_json("release", "digits:1", "--env", str(looks_prod), *FAST)
    assert code == 0 and view["state"] == "DONE", view
    # ... and a "live" environment declared prod is prod, whatever its name says.
    live = _local_env(tmp_path, "uae-live", tier="prod")
    code, _out, err = mlctl("release", "digits:2", "--env", str(live), *FAST)
    assert code == 4 and "uae-live (prod tier) needs a server-verified identity" in err


def test_out_of_region_environment_is_refused(world, tmp_path):
    abroad = _local_env(tmp_path, "eu-local", region="eu-west-1")
    code, _out, err = mlctl("release", "digits:1", "--env", str(abroad), *FAST)
    assert code == 4
    assert "residency gate" in err and "outside the UAE" in err
    _nothing_applied(world.home)
    assert any("residency" in " ".join(e.reasons) for e in _denied("release.refused"))


def test_artifacts_must_live_in_the_environments_registry():
    local = load_environment(BLUEPRINTS_DIR / "uae-local.yaml")
    prod = load_environment(BLUEPRINTS_DIR / "uae-prod-aws.yaml")
    assert check_residency(local, "file:///var/mlctl/artifacts/models/digits/1/x")
    assert check_residency(prod, f"s3://{prod.registries.model_bucket}/models/digits/1/x")
    with pytest.raises(GateRefused, match="local disk"):
        check_residency(prod, "file:///var/mlctl/artifacts/models/digits/1/x")
    with pytest.raises(GateRefused, match="is not uae-prod"):
        check_residency(prod, "s3://some-bucket-in-frankfurt/models/digits/1/x")


def test_release_needs_a_role_that_grants_it(world, monkeypatch):
    monkeypatch.setenv("MLCTL_ACTOR", "amira")  # an approver may not release
    code, _, err = mlctl("release", "digits:1", *FAST)
    assert code == 4 and "may not release" in err
    _nothing_applied(world.home)
