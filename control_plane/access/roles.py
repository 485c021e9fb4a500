"""Kept importable from here: role assignments live in :mod:`control_plane.identity.roles` (who holds
which role is resolved with the identity, below access control)."""

from control_plane.identity.roles import (
    EXAMPLE,
    ROLES,
    create_hint,
    load_assignments,
    roles_file,
    roles_of,
    write_assignments,
)

__all__ = ["EXAMPLE", "ROLES", "create_hint", "load_assignments", "roles_file", "roles_of", "write_assignments"]
