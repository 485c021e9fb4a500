"""Scale-down after the delay: remove the old colour once nobody can need an instant rollback.

``schedule`` starts a small detached process (so the delay survives mlctl exiting) that sleeps,
then deletes the colour only if it is still exactly what it was told to remove: still running
that release, receiving no traffic, and not the candidate of a release in progress. Anything
else means someone has used the colour since (a rollback, a new release), and it leaves it.
"""

from __future__ import annotations

import argparse
import sys
import time

from control_plane import audit
from control_plane.drivers.select import for_environment
from control_plane.emulator import processes
from control_plane.release import gates, repository


def _name(service: str, colour: str) -> str:
    return f"reaper-{service}-{colour}"


def schedule(service: str, colour: str, release_id: str, delay: float, env_name: str) -> int:
    processes.stop(_name(service, colour))
    return processes.spawn(
        _name(service, colour),
        [
            sys.executable,
            "-m",
            "control_plane.release.reaper",
            "--service",
            service,
            "--colour",
            colour,
            "--release",
            release_id,
            "--delay",
            str(delay),
            "--env",
            env_name,
        ],
    )


def cancel(service: str, colour: str) -> None:
    processes.stop(_name(service, colour))


def reap(service: str, colour: str, release_id: str, env_name: str) -> bool:
    """Delete the colour if it is still the one to remove; True if it did."""
    active = repository.active_release(service)
    if active is not None and active.colour == colour:
        return False
    driver = for_environment(gates.environment(env_name))
    deployed = driver.deployed(service).get(colour)
    if deployed is None or deployed.release_id != release_id or driver.traffic(service).get(colour, 0) > 0:
        return False
    driver.delete(service, colour)
    audit.record(
        action="release.scale_down",
        subject=f"service/{service}",
        details={"colour": colour, "release": release_id, "version": deployed.model_version},
    )
    return True


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="mlctl-reaper")
    p.add_argument("--service", required=True)
    p.add_argument("--colour", required=True)
    p.add_argument("--release", required=True)
    p.add_argument("--delay", type=float, required=True)
    p.add_argument("--env", required=True)
    a = p.parse_args(argv)
    time.sleep(a.delay)
    reaped = reap(a.service, a.colour, a.release, a.env)
    print(f"reaper: {a.service}/{a.colour} {'removed' if reaped else 'kept (in use again)'}")


if __name__ == "__main__":
    main()
