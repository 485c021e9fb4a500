"""The roles file is parsed once per content, not once per lookup: every audit append and every
authorization asks for the acting identity's roles. What must not change with that: an edit is
seen at the next lookup (even one that keeps the size and the modification time), a file that
breaks is an error every time (never the last good parse), and a caller's copy is its own."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from control_plane.errors import MlctlError
from control_plane.identity import roles


def _write_keeping_times(path: Path, text: str) -> None:
    st = path.stat()
    path.write_text(text)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # an edit within the timestamp granularity


def test_an_edit_with_the_same_size_and_mtime_is_seen(tmp_path: Path) -> None:
    path = tmp_path / "roles.yaml"
    path.write_text("actors:\n  eli: [approver]\n")
    assert roles.roles_of("eli", path) == ["approver"]
    before = path.stat()
    _write_keeping_times(path, "actors:\n  ali: [approver]\n")
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert roles.roles_of("eli", path) == []
    assert roles.roles_of("ali", path) == ["approver"]


def test_a_file_that_breaks_after_a_good_parse_is_an_error_every_time(tmp_path: Path) -> None:
    path = tmp_path / "roles.yaml"
    path.write_text("actors:\n  eli: [approver]\n")
    assert roles.load_assignments(path) == {"eli": ["approver"]}
    path.write_text("actors:\n  eli: [approver\n")
    for _ in range(2):
        with pytest.raises(MlctlError, match="not valid YAML at line"):
            roles.load_assignments(path)
    path.write_text("actors:\n  eli: [root]\n")
    with pytest.raises(MlctlError, match="unknown role"):
        roles.load_assignments(path)
    path.unlink()
    assert roles.load_assignments(path) is None


def test_a_callers_copy_is_its_own(tmp_path: Path) -> None:
    path = tmp_path / "roles.yaml"
    path.write_text("actors:\n  eli: [approver, ml-engineer]\n")
    got = roles.load_assignments(path)
    assert got is not None
    got["eli"].append("platform-admin")
    got["mallory"] = ["approver"]
    assert roles.load_assignments(path) == {"eli": ["approver", "ml-engineer"]}


def test_an_unreadable_roles_file_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "roles.yaml"
    path.mkdir()  # not a file: reading it fails with an OSError other than "missing"
    with pytest.raises(MlctlError, match="cannot read the roles file") as info:
        roles.load_assignments(path)
    assert str(path) in str(info.value)
