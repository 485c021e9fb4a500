"""Sovereign MLOps release control plane (the package behind ``mlctl``)."""

__version__ = "0.1.0"
