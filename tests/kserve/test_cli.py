"""``mlctl kserve render|validate`` through the real CLI entry point."""

from __future__ import annotations

import json

import yaml

from control_plane.settings import BLUEPRINTS_DIR
from tests.cli_runner import run_mlctl

DIGEST = "sha256:" + "c" * 64
BASE = [
    "kserve",
    "render",
    "--model",
    "fraud",
    "--version",
    "7",
    "--digest",
    DIGEST,
    "--release-id",
    "r1",
    "--blueprint",
    str(BLUEPRINTS_DIR / "uae-prod-aws.yaml"),
]


def run(argv: list[str]) -> tuple[int, str, str]:
    result = run_mlctl(*argv, in_process=True)
    return result.returncode, result.stdout, result.stderr


def test_render_json_and_yaml_round_trip_through_validate(crds_available, tmp_path):
    args = [*BASE, "--storage-uri", "s3://uae-prod-model-artifacts/fraud/7/", "--weights", "blue=90,green=10"]
    code, out, _ = run([*args, "-o", "json"])
    assert code == 0
    objs = json.loads(out)
    assert [o["kind"] for o in objs] == ["InferenceService", "HTTPRoute"]
    code, table_out, _ = run(args)  # the default, for people: what the objects set
    assert code == 0 and "InferenceService" in table_out and "fraud-green" in table_out
    assert "blue-predictor=90" in table_out and "apiVersion" not in table_out
    code, out, _ = run([*args, "-o", "yaml"])
    assert code == 0
    manifest = tmp_path / "m.yaml"
    manifest.write_text(out)
    assert [d["kind"] for d in yaml.safe_load_all(out)] == ["InferenceService", "HTTPRoute"]
    code, out, _ = run(["kserve", "validate", str(manifest), "-o", "json"])
    assert code == 0 and json.loads(out)["valid"] is True

    objs[0]["spec"]["predictor"]["model"]["storageURI"] = "typo"
    manifest.write_text(yaml.safe_dump_all(objs))
    code, out, err = run(["kserve", "validate", str(manifest)])
    assert code == 1 and "storageURI" in out and "fix:" in err


def test_render_refuses_out_of_registry_storage():
    code, _, err = run([*BASE, "--storage-uri", "s3://elsewhere/fraud/7/"])
    assert code == 4
    flat = " ".join(err.split())  # the error console wraps to the terminal width
    assert "outside the model registry of environment 'uae-prod-aws'" in flat
    assert "fix: serve from the in-region registry" in flat and "Traceback" not in flat
