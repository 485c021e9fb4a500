"""``make demo`` and ``make demo-infra``: the product's tour on the embedded environment, built on
the same service-layer verbs as ``mlctl`` (examples, not the product's core; nothing imports them).

- ``run``: local environment up → register → sign → approve (with verified identities for a
  prod-tier environment, ``identity``) → blue-green under load → rollback → continuous training
  (``pipeline``) → audit; ``python -m control_plane.demo``.
- ``infra``: the platform engineer's path (synth → bootstrap → apply → drift → destroy) on the emulator;
  ``python -m control_plane.demo.infra``.
"""

from control_plane.demo.run import build_and_register, main, prepare_identities, run

__all__ = ["build_and_register", "main", "prepare_identities", "run"]
