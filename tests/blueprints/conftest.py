"""Helpers for the bad-blueprint matrix: variants of the embedded default written to temp files."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BASE: dict[str, Any] = yaml.safe_load((REPO / "blueprints" / "uae-local.yaml").read_text())


@pytest.fixture()
def write_variant(tmp_path: Path) -> Callable[[str, Callable[[dict[str, Any]], None]], Path]:
    """``write_variant("name", change)``: uae-local.yaml with ``change`` applied, as a new file."""

    def write(name: str, change: Callable[[dict[str, Any]], None]) -> Path:
        doc = copy.deepcopy(BASE)
        change(doc)
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    return write
