"""Kept importable from here; the request-log policy lives in :mod:`control_plane.request_log.policy`
(beside the one writer that applies it, below the serving drivers)."""

from control_plane.request_log.policy import LogPolicy, load_policy, minimise_inputs, policy_file

__all__ = ["LogPolicy", "load_policy", "minimise_inputs", "policy_file"]
