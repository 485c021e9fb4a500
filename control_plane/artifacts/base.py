"""The ArtifactStore port: put a model directory, get it back, with per-file SHA-256 digests."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Protocol, runtime_checkable

from control_plane.errors import VerificationFailed

CHUNK = 1 << 20


@runtime_checkable
class ArtifactStore(Protocol):
    kind: str  # "local" | "s3"

    def uri(self, prefix: str) -> str:
        """Where ``prefix`` lives, as a URI (file:///..., s3://bucket/...)."""
        ...

    def put_dir(self, src: Path, prefix: str, files: Mapping[str, str]) -> str:
        """Store every file of ``files`` (relpath -> sha256 hex, already computed from ``src``) under
        ``prefix``; re-hash the bytes actually stored and refuse when they differ. Returns the URI."""
        ...

    def get_dir(self, prefix: str, dest: Path, files: Mapping[str, str]) -> Path:
        """Download the files under ``prefix`` into ``dest``, verifying each digest."""
        ...

    def exists(self, prefix: str) -> bool: ...

    def delete_prefix(self, prefix: str) -> None: ...

    def list_keys(self, prefix: str) -> list[str]: ...

    def put_blob(self, key: str, data: bytes) -> str: ...


class HashingReader:
    """Wraps a file so the bytes actually read (i.e. uploaded) are hashed on the way."""

    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh
        self.sha256 = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._fh.read(size)
        self.sha256.update(data)
        return data


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def changed_during_upload(relpath: str, expected: str, actual: str) -> VerificationFailed:
    return VerificationFailed(
        f"'{relpath}' changed while it was being stored (sha256 {actual[:16]}… != {expected[:16]}… hashed before)",
        hint="stop whatever is writing the model directory, then register again",
    )


def missing_from_store(relpath: str, where: str) -> VerificationFailed:
    """A registered file that the store no longer holds."""
    return VerificationFailed(f"'{relpath}' is missing from {where}",
                              hint="the artifact store was altered; restore it from backup")


def verify_fetched(path: Path, relpath: str, expected: str, where: str) -> None:
    """Refuse a fetched file whose bytes no longer hash to the registered sha256 (both stores)."""
    actual = sha256_file(path)
    if actual != expected:
        raise VerificationFailed(
            f"'{relpath}' in {where} does not match its registered sha256 ({actual[:16]}… != {expected[:16]}…)",
            hint="the stored artifact was altered; do not deploy it; restore it from backup",
        )


def check_relpath(relpath: str) -> str:
    """Refuse paths that could escape the destination directory (defence in depth on download)."""
    parts = Path(relpath).parts
    if Path(relpath).is_absolute() or ".." in parts or not parts:
        raise VerificationFailed(
            f"refusing artifact path '{relpath}': it is absolute or climbs out of the model directory",
            hint="the registry record was tampered with; restore it from backup",
        )
    return relpath


def iter_sorted(files: Mapping[str, str]) -> Iterator[tuple[str, str]]:
    yield from sorted(files.items())
