"""Policies as data: Rego files (``infra/`` guardrails over synthesized Terraform JSON, and the
release/RBAC policies of other parts) plus ``skips.yaml``, the justified exceptions to the infra gate.

``POLICIES_DIR`` is this folder; code finds the files through it rather than a path literal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

POLICIES_DIR: Final = Path(__file__).resolve().parent
INFRA_POLICIES_DIR: Final = POLICIES_DIR / "infra"
SKIPS_FILE: Final = POLICIES_DIR / "skips.yaml"
