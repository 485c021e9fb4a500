"""The typed environment model: the contract between the infrastructure and the control plane.

Public surface: ``load_blueprint`` and the models in ``blueprints.schema``.
"""

from blueprints.loader import load_blueprint, load_environment
from blueprints.schema import Blueprint, Cloud, Environment

__all__ = ["Blueprint", "Cloud", "Environment", "load_blueprint", "load_environment"]
