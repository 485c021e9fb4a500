"""UAE residency: the only regions anything may be synthesized in or deployed to.

This is law for our users, not a default, so it is a constant with no override. AWS has one
UAE region (me-central-1, launched 2022-08); Azure has UAE North (Dubai) and UAE Central
(Abu Dhabi). Sources: AWS "Regions and Availability Zones" and Azure "Azure geographies" pages,
checked 2026-11.
"""

from __future__ import annotations

from typing import Final

ALLOWED_REGIONS: Final[dict[str, tuple[str, ...]]] = {
    "aws": ("me-central-1",),
    "azure": ("uaenorth", "uaecentral"),
}


def allowed_regions(cloud: str) -> tuple[str, ...]:
    return ALLOWED_REGIONS.get(cloud, ())


def is_allowed(cloud: str, region: str) -> bool:
    return region in allowed_regions(cloud)
