"""The release engine: gates, blue-green and canary strategies, analysis and rollback.

Public surface::

    engine.Engine(driver).start(model_name=..., version=..., env_name=..., config=ReleaseConfig(...))
    engine.Engine(driver).run(release_id)          # drive to DONE / ROLLED_BACK / REFUSED / paused
    describe(row)                                   # the status view (JSON-ready)

The CLI (``mlctl release``) is a thin layer over these.
"""

from control_plane.release.config import STRATEGIES, ReleaseConfig
from control_plane.release.engine import TERMINAL, Engine, driver_for
from control_plane.release.view import describe

__all__ = ["STRATEGIES", "TERMINAL", "Engine", "ReleaseConfig", "describe", "driver_for"]
