"""Fixtures for the policy gate: each blueprint synthesized once per session (synth takes 10-40 s);
tests that inject violations work on a copy."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from control_plane.policy.findings import StackFile
from control_plane.policy.infra_gate import stacks_in, to_stack_files
from tests.synthesis import Synthesizer

REPO = Path(__file__).resolve().parents[2]
BLUEPRINTS = ("uae-local", "uae-prod-aws")


@pytest.fixture(scope="session")
def synthesized(synthesizer: Synthesizer) -> Callable[[str], list[StackFile]]:
    """``synthesized("uae-local")``: the real synthesized stacks of blueprints/<name>.yaml, from
    the session's shared synthesis (tests/conftest.py: each blueprint is synthesized once)."""
    return lambda name: to_stack_files(synthesizer(name).stacks)


def copy_stacks(stacks: list[StackFile], dest: Path) -> list[StackFile]:
    """A private copy (``dest/stacks/<name>/cdk.tf.json``) to inject violations into."""
    for s in stacks:
        target = dest / "stacks" / s.name
        target.mkdir(parents=True)
        shutil.copy(s.path, target / "cdk.tf.json")
    return stacks_in(dest)


def edit_stack(stacks: list[StackFile], suffix: str, change: Callable[[dict[str, Any]], None]) -> StackFile:
    """Apply ``change`` to the JSON of the one stack whose name ends with ``suffix``."""
    (stack,) = [s for s in stacks if s.name.endswith(suffix)]
    doc = json.loads(stack.path.read_text())
    change(doc)
    stack.path.write_text(json.dumps(doc, indent=2))
    return stack


def only(doc: dict[str, Any], rtype: str, contains: str = "") -> tuple[str, dict[str, Any]]:
    """The first resource of ``rtype`` whose name contains ``contains``: (name, config)."""
    for name, config in doc["resource"][rtype].items():
        if contains in name:
            return name, config
    raise AssertionError(f"no {rtype} named *{contains}* in the stack")
