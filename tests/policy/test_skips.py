"""policies/skips.yaml semantics: a justified finding is skipped with its reason, an unjustified one
fails, a skip entry that matches nothing is stale, and a bad skip file is a clear error."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from control_plane.policy.findings import StackFile
from control_plane.policy.infra_gate import SKIPS_FILE, check_stacks
from control_plane.policy.skips import SkipFileError, load_skips
from tests.policy.test_guardrails import SECURE


def _stack(tmp_path: Path) -> StackFile:
    doc = copy.deepcopy(SECURE)
    del doc["resource"]["aws_cloudwatch_log_group"]["flow"]["kms_key_id"]  # UAE-ENC-003
    doc["resource"]["aws_kms_key"]["logs"]["enable_key_rotation"] = False  # UAE-ENC-008
    path = tmp_path / "net" / "cdk.tf.json"
    path.parent.mkdir()
    path.write_text(json.dumps(doc))
    return StackFile(name="uae-test-network", path=path)


def _skips(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "skips.yaml"
    path.write_text(text)
    return path


def test_skip_matches_by_id_resource_glob_and_stack(tmp_path: Path) -> None:
    skips = _skips(
        tmp_path,
        """
skips:
  - id: UAE-ENC-003
    resource: aws_cloudwatch_log_group.fl*
    stack: "*-network"
    reason: flow logs of this test stack are encrypted by the account default key
  - id: CKV_AWS_999
    resource: aws_s3_bucket.*
    reason: an entry that matches nothing must be reported as stale
  - id: UAE-ENC-003
    resource: "*"
    cloud: azure
    reason: entries for a cloud that was not checked are not stale
""",
    )
    report = check_stacks([_stack(tmp_path)], skips_path=skips, with_checkov=False)
    by_id = {f.id: f for f in report.findings}
    assert by_id["UAE-ENC-003"].status == "skipped"
    assert "account default key" in (by_id["UAE-ENC-003"].skipped_reason or "")
    assert by_id["UAE-ENC-008"].status == "FAIL"
    assert not report.passed
    assert [(s.index, s.id) for s in report.stale_skips] == [(1, "CKV_AWS_999")]
    assert report.as_dict()["counts"] == {"unexplained": 1, "skipped": 1, "stale_skips": 1}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("skips: [{id: CKV_AWS_1, resource: '*'}]", "skips[0] is invalid: reason"),
        ("skips: [{id: CKV_AWS_1, resource: '*', reason: too short}]", "at least 20 characters"),
        ("skips: [{resource: '*', reason: 'a reason that is long enough here'}]", "skips[0] is invalid: id"),
        ("skips: [{id: X_1, resource: '*', reason: 'a reason that is long enough', extra: 1}]", "extra"),
        ("skips: {id: 1}", "expected a mapping with a 'skips' list"),
        ("skips: [\n  - broken", "cannot read the skip file"),
    ],
)
def test_bad_skip_file_is_a_clear_error(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(SkipFileError) as err:
        load_skips(_skips(tmp_path, text))
    assert expected in err.value.message and str(tmp_path) in err.value.message
    assert err.value.hint


def test_repository_skip_file_is_valid_and_every_entry_has_a_reason() -> None:
    entries = load_skips(SKIPS_FILE)
    assert entries, "the repository's skip file exists"
    assert all(len(e.reason) >= 20 for e in entries)
