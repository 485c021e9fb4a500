"""GPU instance families a blueprint may ask for: the only list of them in the project.

AWS me-central-1. Source: EC2 "Instance types available by Region" and
``aws ec2 describe-instance-type-offerings --region me-central-1 --filters Name=instance-type,Values=g*,p*``,
reviewed 2026-11-15. UAE capacity changes; re-run that command and update this list (and its date)
before adding a family. The system pool uses general purpose families, listed separately.

Azure UAE North / UAE Central: NC and ND families only (NVIDIA; NV is for visualisation).
Source: "Products available by region" for uaenorth / uaecentral and
``az vm list-skus --location uaenorth --resource-type virtualMachines``, reviewed 2026-11-15.
"""

from __future__ import annotations

import re
from typing import Final

CATALOG_REVIEWED: Final = "2026-11-15"

# family -> (GPU model, compute capability) — the compute capability feeds TensorRT engine matching.
AWS_GPU_FAMILIES: Final[dict[str, tuple[str, str]]] = {
    "g4dn": ("NVIDIA T4", "7.5"),
    "g5": ("NVIDIA A10G", "8.6"),
    "g6": ("NVIDIA L4", "8.9"),
    "p4d": ("NVIDIA A100", "8.0"),
    "p5": ("NVIDIA H100", "9.0"),
}
AWS_SYSTEM_FAMILIES: Final = ("m5", "m6i", "m7i", "c6i", "c7i", "r6i", "t3")

# Azure VM sizes (patterns over the size name) -> (GPU model, compute capability)
AZURE_GPU_SIZES: Final[dict[str, tuple[str, str]]] = {
    r"^Standard_NC\d+as_T4_v3$": ("NVIDIA T4", "7.5"),
    r"^Standard_NC\d+ads_A100_v4$": ("NVIDIA A100", "8.0"),
    r"^Standard_NC\d+ads_H100_v5$": ("NVIDIA H100 NVL", "9.0"),
    r"^Standard_ND\d+asr_v4$": ("NVIDIA A100", "8.0"),
    r"^Standard_ND\d+isr_H100_v5$": ("NVIDIA H100", "9.0"),
}
AZURE_SYSTEM_PREFIXES: Final = ("Standard_D", "Standard_E", "Standard_F")

_AWS_TYPE = re.compile(r"^(?P<family>[a-z][a-z0-9-]*?)\.(?P<size>[0-9]*x?large|metal|medium|small|micro|nano)$")


def aws_family(instance_type: str) -> str | None:
    m = _AWS_TYPE.match(instance_type)
    return m.group("family") if m else None


def gpu_info(cloud: str, instance_type: str) -> tuple[str, str] | None:
    """(GPU model, compute capability) for a GPU instance type we allow, else None."""
    if cloud == "aws":
        family = aws_family(instance_type)
        return AWS_GPU_FAMILIES.get(family or "")
    if cloud == "azure":
        for pattern, info in AZURE_GPU_SIZES.items():
            if re.match(pattern, instance_type):
                return info
        return None
    return None


def allowed_gpu_types(cloud: str) -> str:
    """Human list for error messages."""
    if cloud == "aws":
        return ", ".join(f"{f}.*" for f in AWS_GPU_FAMILIES)
    return "Standard_NC*as_T4_v3, Standard_NC*ads_A100_v4, Standard_NC*ads_H100_v5, Standard_ND*asr_v4, Standard_ND*isr_H100_v5"


def is_system_type(cloud: str, instance_type: str) -> bool:
    if cloud == "aws":
        return (aws_family(instance_type) or "") in AWS_SYSTEM_FAMILIES
    return instance_type.startswith(AZURE_SYSTEM_PREFIXES)
