"""The base of every Pulumi ComponentResource here (AWS and Azure): children are named after the
CDKTF construct path they mirror, ``<component name>/<child id>``, which is what the parity tests
match resources on."""

from __future__ import annotations

from typing import ClassVar

import pulumi


class Component(pulumi.ComponentResource):
    """A component of type ``<type_prefix>:<kind>`` whose children are named ``<name>/<child id>``."""

    type_prefix: ClassVar[str]

    def __init__(self, kind: str, name: str, opts: pulumi.ResourceOptions | None) -> None:
        super().__init__(f"{self.type_prefix}:{kind}", name, None, opts)
        self._name = name

    def child(self, id: str) -> str:
        return f"{self._name}/{id}"

    def opts(self, depends_on: list[pulumi.Resource] | None = None) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, depends_on=depends_on)
