"""Serving runtimes behind one port (``drivers.base.Driver``); see ``base`` for the contract."""

from control_plane.drivers.base import (
    COLOURS,
    Deployment,
    Driver,
    MetricsSource,
    Readiness,
    Resources,
    check_weights,
    other_colour,
)

__all__ = [
    "COLOURS",
    "Deployment",
    "Driver",
    "MetricsSource",
    "Readiness",
    "Resources",
    "check_weights",
    "other_colour",
]
