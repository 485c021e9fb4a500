"""The composition root for serving drivers: which ``Driver`` serves an environment.

The release engine and the services receive a driver; only this module knows the concrete kinds
(the embedded local runtime, KServe on Kubernetes), so nothing above branches on a driver's name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from control_plane.drivers.base import Driver
from control_plane.drivers.local import LocalDriver
from control_plane.errors import MlctlError

if TYPE_CHECKING:
    from blueprints.schema import Environment

__all__ = ["for_environment"]


def for_environment(env: Environment) -> Driver:
    """The driver for ``env``: the local runtime for the embedded environment, KServe otherwise."""
    if env.is_local:
        return LocalDriver()
    try:
        # the local environment never needs the Kubernetes client
        from control_plane.kserve import driver_for_environment  # lazy: pulls kubernetes (~1 s)
    except ImportError as exc:
        raise MlctlError(
            f"environment {env.name} runs on Kubernetes and the Kubernetes driver is unavailable",
            hint="install the kserve driver (control_plane.kserve)",
        ) from exc
    driver: Driver = driver_for_environment(env)
    return driver
