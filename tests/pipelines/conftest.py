"""Fixtures for the pipeline tests: who may run pipelines, the sample data sets, and a pipeline
file derived from the sample (small grids keep the KFP local runs short)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from control_plane.samples.pipeline import write_datasets
from control_plane.settings import PACKAGE_ROOT

SAMPLE = PACKAGE_ROOT / "samples" / "pipeline"


@pytest.fixture(autouse=True)
def _pipeline_env(mlctl_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from control_plane.access.roles import write_assignments

    for var in ("MLCTL_BLUEPRINT", "MLCTL_ARTIFACT_STORE", "MLCTL_ROLES_FILE"):
        monkeypatch.delenv(var, raising=False)
    write_assignments({"eli": ["ml-engineer"], "dana": ["data-scientist"]})
    monkeypatch.setenv("MLCTL_ACTOR", "eli")


@pytest.fixture(scope="session")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_datasets(tmp_path_factory.mktemp("datasets"))


def pin(path: Path) -> str:
    return f"{path}@sha256:{hashlib.sha256(path.read_bytes()).hexdigest()}"


@pytest.fixture()
def pipeline_file(tmp_path: Path) -> Callable[..., Path]:
    """Write a pipeline file like the sample with some fields replaced; relative paths of the
    sample stay pointed at the sample."""

    def write(**changes: Any) -> Path:
        cfg = yaml.safe_load((SAMPLE / "digits.yaml").read_text())
        cfg["transforms_tests"] = str(SAMPLE / "test_transforms.py")
        cfg["features"]["dir"] = str(SAMPLE / "features")
        cfg.update(changes)
        path = tmp_path / f"{cfg['name']}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        return path

    return write


BUCKET = "uae-local-model-artifacts"  # blueprints/uae-local.yaml's model bucket


@pytest.fixture()
def bucket(aws_emulator: str) -> Iterator[object]:
    """The environment's bucket on the session's AWS emulator, versioned. The emulator may already
    hold it (an infra test applied the stacks): then it is used empty and left as found."""
    s3 = boto3.client("s3", endpoint_url=aws_emulator, region_name="me-central-1")

    def empty() -> None:
        for v in s3.list_object_versions(Bucket=BUCKET).get("Versions", []):
            s3.delete_object(Bucket=BUCKET, Key=v["Key"], VersionId=v["VersionId"])

    created = True
    try:
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "me-central-1"})
    except s3.exceptions.BucketAlreadyOwnedByYou:
        created = False
        empty()
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    yield s3
    empty()
    if created:
        s3.delete_bucket(Bucket=BUCKET)
