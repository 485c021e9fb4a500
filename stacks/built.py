"""One synthesized stack of an environment, as the cloud builders return it (a leaf module: the
builders and the composition both use it without importing each other)."""

from __future__ import annotations

from dataclasses import dataclass

from modules.cdk import TerraformStack

__all__ = ["BuiltStack"]


@dataclass(frozen=True)
class BuiltStack:
    stack: TerraformStack
    name: str
    environment: str
    cloud: str
    layer: str
    order: int
