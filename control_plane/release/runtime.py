"""Compatibility: the serving driver for an environment *name* (``mlctl release --env NAME``).

The composition root is ``drivers.select.for_environment(env)``; this only resolves the name to a
residency-checked environment first (``gates.environment``). Kept for callers written against the
old ``engine.driver_for`` (``cli/release.py``); new code calls ``drivers.select`` directly.
"""

from __future__ import annotations

from control_plane.drivers.base import Driver
from control_plane.drivers.select import for_environment
from control_plane.release import gates


def driver_for(env_name: str) -> Driver:
    """The driver for a residency-checked environment (``drivers.select`` picks the kind)."""
    return for_environment(gates.environment(env_name))
