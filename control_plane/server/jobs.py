"""Releases as background work of the server: a release outlives the request that started it.

The request returns as soon as the release is recorded (202, with where to watch it); a worker
thread drives the engine's crash-safe state machine to its end. At start-up the server resumes
every release whose driving process died (a previous server, or a CLI process killed mid-release):
the engine's recorded intent makes that safe (``release.engine``, "How it survives a crash").
Pipeline runs are not resumed (a KFP local run cannot be picked up mid-step): a run whose driving
process died is ended instead, failed with the reason and the fix (start it again), and audited,
so that ``pipeline status`` / ``list`` tell the truth.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from control_plane import identity
from control_plane.drivers.select import for_environment
from control_plane.errors import MlctlError
from control_plane.identity import Actor
from control_plane.pipelines.service import end_orphaned_runs
from control_plane.release import engine, gates
from control_plane.release.queries import list_releases
from control_plane.services import Context

__all__ = ["Jobs"]

log = logging.getLogger("mlctl.server.jobs")

# Who resumes a release whose driver died: the server itself, carrying on a release that was
# authorized when it started (the audit entries of the resumed steps say so).
SERVER_ACTOR = Actor("mlctl-server", "os-user", [])


class Jobs:
    def __init__(self, workers: int = 4) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mlctl-release")
        self._running: dict[str, Future[Any]] = {}
        self._lock = threading.Lock()

    def submit(self, ctx: Context, service: str, work: Callable[[], Any]) -> None:
        """Run ``work`` (one release of ``service``) as ``ctx``'s actor in a worker thread."""

        def run() -> Any:
            with ctx.acting():
                try:
                    return work()
                except MlctlError as exc:  # recorded by the engine (REFUSED / ROLLED_BACK); log the why
                    log.warning("release of %s ended with an error: %s", service, exc.message)
                    return None

        with self._lock:
            self._running[service] = self._pool.submit(run)

    def busy(self, service: str) -> bool:
        with self._lock:
            future = self._running.get(service)
            return future is not None and not future.done()

    def resume_orphans(self) -> list[str]:
        """Claim and drive every active release no live process drives; the services resumed. First
        end the pipeline runs a stopped process left ``running`` (see the module docstring)."""
        with identity.acting(SERVER_ACTOR):
            ended = end_orphaned_runs()
        if ended:
            log.warning("ended the pipeline runs %s: their driving process had stopped (start them again)",
                        ", ".join(ended))
        resumed = []
        for row in list_releases(states=["active"]):
            service = str(row["service"])
            try:
                driver = for_environment(gates.environment(str(row["environment"])))
                eng = engine.Engine(driver)
                claimed = eng.claim(service)  # refused while its driving process is alive
            except MlctlError as exc:
                log.info("not resuming %s: %s", service, exc.message)
                continue
            self.submit(Context.for_actor(SERVER_ACTOR), service, functools.partial(eng.run, claimed.id))
            resumed.append(service)
        return resumed

    def wait(self, service: str, timeout: float | None = None) -> Any:
        with self._lock:
            future = self._running.get(service)
        return None if future is None else future.result(timeout)

    def shutdown(self) -> None:
        # Releases in flight stop at a recorded state; the next server start resumes them.
        self._pool.shutdown(wait=False, cancel_futures=True)
