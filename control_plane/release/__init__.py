"""The release engine: gates, blue-green and canary strategies, analysis and rollback.

Public surface::

    engine.Engine(driver).start(model_name=..., version=..., env_name=..., config=ReleaseConfig(...))
    engine.Engine(driver).run(release_id)          # drive to DONE / ROLLED_BACK / REFUSED / paused
    describe(row)                                   # the status view (JSON-ready)

Layout: ``states`` (names and graph), ``repository`` (the tables), ``admission`` / ``bluegreen`` /
``canary`` / ``shadow`` (the steps), ``window`` (analysis windows), ``engine`` (the loop). The
driver comes from ``drivers.select.for_environment``; ``driver_for`` (``release.runtime``) is a
compatibility wrapper taking an environment name.
"""

from control_plane.release.config import STRATEGIES, ReleaseConfig
from control_plane.release.engine import Engine
from control_plane.release.runtime import driver_for
from control_plane.release.states import TERMINAL
from control_plane.release.view import describe

__all__ = ["STRATEGIES", "TERMINAL", "Engine", "ReleaseConfig", "describe", "driver_for"]
