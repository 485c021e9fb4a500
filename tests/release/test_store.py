"""The release tables on SQLite and PostgreSQL: one release per service, taken atomically."""

from __future__ import annotations

import threading

import pytest

from control_plane.drivers.local import LocalDriver
from control_plane.errors import Conflict
from control_plane.release import Engine, ReleaseConfig
from control_plane.release import engine as eng_mod


def test_only_one_of_many_concurrent_starts_takes_the_service(db_url):
    engine = Engine(LocalDriver())
    eng_mod.active_release("digits")  # migrate once before the race
    won: list[str] = []
    refused: list[str] = []
    barrier = threading.Barrier(6)

    def go() -> None:
        barrier.wait()
        try:
            won.append(
                engine.start(model_name="digits", version="1", env_name="uae-local", config=ReleaseConfig())
            )
        except Conflict as exc:
            refused.append(exc.message)
        except Exception as exc:  # anything else is a bug: report it rather than lose the thread
            refused.append(f"unexpected {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=go) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(won) == 1 and len(refused) == 5, (won, refused)
    assert all("already has a release in progress" in r for r in refused)
    active = eng_mod.active_release("digits")
    assert active is not None and active.id == won[0] and active.state == "PENDING"
    with pytest.raises(Conflict):
        engine.start(model_name="digits", version="2", env_name="uae-local", config=ReleaseConfig())
