"""A release parses each blueprint file once (issue 10: it used to parse it at least four times:
the CLI's RBAC check, the residency gate, the driver, the approvals and the audit signer each
loaded it again). Counted at the loader's YAML read, which every load path goes through."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.release.helpers import FAST, mlctl_json

pytestmark = pytest.mark.slow


def test_a_local_release_parses_its_blueprint_once(world, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from blueprints import loader

    try:
        from control_plane.environments import cache_clear
    except ImportError:  # before the cached loader (to measure the old count)
        def cache_clear() -> None:
            pass

    real = loader._parse_yaml
    parses: Counter[str] = Counter()

    def counting(path: Path):  # type: ignore[no-untyped-def]
        parses[Path(path).name] += 1
        return real(path)

    monkeypatch.setattr(loader, "_parse_yaml", counting)
    cache_clear()
    code, view = mlctl_json("release", "digits:1", "--env", "uae-local", *FAST)
    assert code == 0 and view["state"] == "DONE", view
    with capsys.disabled():
        print(f"\nblueprint parses during one local release: {dict(parses)}")
    assert parses["uae-local.yaml"] == 1, dict(parses)
    assert set(parses.values()) == {1}, dict(parses)
