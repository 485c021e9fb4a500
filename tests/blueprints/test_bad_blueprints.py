"""Bad blueprints through the real CLI, in a subprocess: each exits non-zero naming the file, the
field and the fix, with no traceback (`mlctl blueprint validate` and `mlctl infra check`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.blueprints.conftest import REPO
from tests.cli_runner import Result, run_mlctl

BAD: list[tuple[str, Callable[[dict[str, Any]], None] | str, list[str]]] = [
    # (case, change or raw YAML text, what stderr must name besides the file)
    (
        "non-uae-region",
        lambda d: d.update(region="eu-west-1"),
        ["region:", "'eu-west-1' is outside the UAE", "me-central-1"],
    ),
    (
        "overlapping-cidrs",
        lambda d: d["network"]["segments"][1].update(cidr="10.40.8.0/21"),
        ["network:", "'serving' (10.40.0.0/20)", "'training' (10.40.8.0/21) overlap"],
    ),
    (
        "unknown-gpu-type",
        lambda d: d["cluster"]["gpu_pools"][0].update(instance_type="p3.2xlarge"),
        ["cluster:", "gpu_pools[0].instance_type 'p3.2xlarge'", "g5.*"],
    ),
    ("missing-field", lambda d: d.pop("tags"), ["tags: Field required", "add this field"]),
    (
        "missing-nested-field",
        lambda d: d["cluster"]["system_pool"].pop("instance_type"),
        ["cluster.system_pool.instance_type: Field required"],
    ),
    (
        "malformed-yaml",
        "name: x\ncloud: aws\n  region: [me-central-1\n",
        ["malformed YAML at line 3", "fix:"],
    ),
    ("duplicate-key", "name: a\nname: b\n", ["line 2", "duplicate key 'name'", "keep one of the two keys"]),
    ("cidr-as-number", lambda d: d["network"].update(vpc_cidr=12), ["network.vpc_cidr:", "write it as text"]),
    (
        "typo-field",
        lambda d: d["network"].update(segmnets=[]),
        ["network.segmnets: Extra inputs", "check its spelling"],
    ),
    ("not-a-mapping", "- just\n- a list\n", ["expected a YAML mapping"]),
    # The tier is declared, never guessed from the name (a "uae-live" environment is not dev).
    ("missing-tier", lambda d: (d.pop("tier"), d.update(name="uae-live")),
     ["tier: Field required", "add 'tier: dev', 'tier: staging' or 'tier: prod'", "never guessed from the name"]),
    ("unknown-tier", lambda d: d.update(tier="production"), ["tier: Input should be 'dev', 'staging' or 'prod'"]),
]


def _write(tmp_path: Path, write_variant: Callable[..., Path], case: str, change: Any) -> Path:
    if isinstance(change, str):
        path = tmp_path / f"{case}.yaml"
        path.write_text(change)
        return path
    return write_variant(case, change)


def _assert_clear_error(proc: Result, path: Path, expected: list[str]) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    assert str(path) in proc.stderr
    assert "fix:" in proc.stderr
    for text in expected:
        assert text in proc.stderr, (text, proc.stderr)


def test_blueprint_validate_names_file_field_and_fix(
    tmp_path: Path, write_variant: Callable[..., Path]
) -> None:
    """One `mlctl blueprint validate` over every bad file (one process: start-up is the slow part)."""
    paths = [_write(tmp_path, write_variant, case, change) for case, change, _ in BAD]
    proc = run_mlctl("blueprint", "validate", *map(str, paths))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"{len(BAD)} of {len(BAD)} blueprint(s) invalid" in proc.stderr
    for path, (case, _, expected) in zip(paths, BAD, strict=True):
        assert str(path) in proc.stderr, case
        for text in expected:
            assert text in proc.stderr, (case, text, proc.stderr)


@pytest.mark.parametrize(("case", "change", "expected"), BAD[:6], ids=[b[0] for b in BAD[:6]])
def test_infra_check_refuses_bad_blueprint_before_synth(
    tmp_path: Path, write_variant: Callable[..., Path], case: str, change: Any, expected: list[str]
) -> None:
    path = _write(tmp_path, write_variant, case, change)
    _assert_clear_error(
        run_mlctl("infra", "check", "--blueprint", str(path)), path, expected
    )


def test_validate_json_output_and_good_files() -> None:
    import json

    good = [str(REPO / "blueprints" / "uae-local.yaml"), str(REPO / "blueprints" / "uae-prod-aws.yaml")]
    proc = run_mlctl("blueprint", "validate", *good, "--output", "json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["valid"] is True
    assert [e["region"] for f in report["files"] for e in f["environments"]] == [
        "me-central-1",
        "me-central-1",
    ]


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    _assert_clear_error(
        run_mlctl("blueprint", "validate", str(path)), path, ["no such blueprint file"]
    )


def test_missing_tier_in_a_multicloud_file_names_the_environment(tmp_path: Path) -> None:
    import yaml

    from blueprints import load_blueprint
    from control_plane.errors import BlueprintError

    doc = yaml.safe_load((REPO / "blueprints" / "uae-multicloud.yaml").read_text())
    doc["environments"][1].pop("tier")
    path = tmp_path / "mc.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    with pytest.raises(BlueprintError) as exc:
        load_blueprint(path)
    assert str(path) in exc.value.message
    assert "environment uae-mc-azure: environments.1.tier: Field required" in exc.value.message
    assert "tier: prod" in exc.value.message
