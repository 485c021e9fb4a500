"""A release that ends is covered by a signed audit tree head: the engine checkpoints the log at
every terminal state, so the whole release is provable without waiting for the next batch."""

from __future__ import annotations

import pytest

from control_plane import audit
from tests.release.helpers import FAST, mlctl_json


def test_a_refused_release_ends_with_a_signed_head_covering_it(world, monkeypatch: pytest.MonkeyPatch) -> None:
    # Heads would otherwise come only every 100,000 entries or hour: the one at the end is the engine's.
    monkeypatch.setenv("MLCTL_AUDIT_HEAD_EVERY", "100000")
    monkeypatch.setenv("MLCTL_AUDIT_HEAD_SECONDS", "3600")
    world.register("5", "v1", sign=False)
    before = [h["size"] for h in audit.signed_heads()]
    code, view = mlctl_json("release", "digits:5", *FAST)
    assert code == 4 and view["state"] == "REFUSED"
    final = next(e for e in reversed(audit.entries())
                 if e.action == "release.transition" and e.details.get("to") == "REFUSED")
    sizes = [h["size"] for h in audit.signed_heads()]
    assert sizes[-1] >= final.seq and sizes[-1] not in before, (before, sizes, final.seq)
    proof = audit.prove(final.seq)
    assert proof["verified"] and proof["entry"]["details"]["release"] == view["release"]
    report = audit.verify()
    assert report.ok, report.problems
