"""The foundation: settings, the CLI shell, the store and the shared fixtures all work."""

from __future__ import annotations

import sqlalchemy as sa

from control_plane.store import db
from tests.cli_runner import run_mlctl


def test_mlctl_home_is_private(mlctl_home):
    from control_plane.settings import mlctl_home as home

    assert home() == mlctl_home
    assert (mlctl_home.stat().st_mode & 0o077) == 0 or mlctl_home.exists()


def test_cli_help_lists_groups():
    out = run_mlctl("--help")
    assert out.returncode == 0, out.stderr
    assert "local" in out.stdout


def test_store_migrates_on_both_backends(db_url):
    engine = db.get_engine(db_url)
    with engine.connect() as conn:
        version = conn.execute(sa.text("select version_num from alembic_version")).scalar_one()
    assert version


def test_emulator_answers(aws_emulator):
    import boto3

    s3 = boto3.client("s3", endpoint_url=aws_emulator, region_name="me-central-1")
    s3.create_bucket(Bucket="fixture-check", CreateBucketConfiguration={"LocationConstraint": "me-central-1"})
    assert "fixture-check" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
