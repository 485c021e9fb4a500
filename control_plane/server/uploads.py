"""Receiving an upload (``model register``, ``monitor drift``, ``pii scan``): the request body
streamed to a file, refused with 413 (``UploadTooLarge``) as soon as it passes
``MLCTL_SERVER_MAX_UPLOAD_MB``, before the server has read more than that."""

from __future__ import annotations

from pathlib import Path

from fastapi import Request

from control_plane.errors import UsageError
from control_plane.services import Context

__all__ = ["UploadTooLarge", "limit", "receive"]


class UploadTooLarge(UsageError):
    """→ 413: the upload is over the server's limit."""


def limit(ctx: Context) -> int:
    """The server's upload limit in bytes."""
    return int(ctx.settings.server_max_upload_mb) * 1024 * 1024


async def receive(request: Request, into: Path, max_bytes: int, *, smaller: str) -> None:
    """Write the request body to ``into``, refusing (413) as soon as it passes ``max_bytes``;
    ``smaller`` is the fix's first half (what the caller can send instead)."""
    def too_large() -> UploadTooLarge:
        return UploadTooLarge(f"the upload is over this server's limit of {max_bytes // (1024 * 1024)} MiB",
                              hint=f"{smaller}, or ask the operator to raise MLCTL_SERVER_MAX_UPLOAD_MB")

    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise too_large()
    size = 0
    with into.open("wb") as fh:
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise too_large()
            fh.write(chunk)
