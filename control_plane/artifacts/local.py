"""The embedded default: a directory under ``$MLCTL_HOME/artifacts``.

A model version is copied into a private staging directory, checked, made read-only and then
renamed into place in one step, so readers never see half a model and a crash leaves nothing
but a staging directory that is not referenced by anything.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path

from control_plane.artifacts.base import (
    CHUNK,
    changed_during_upload,
    check_relpath,
    missing_from_store,
    verify_fetched,
)
from control_plane.errors import NotFound
from control_plane.settings import state_dir


class LocalArtifactStore:
    kind = "local"

    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or state_dir("artifacts")).resolve()

    def _path(self, prefix: str) -> Path:
        check_relpath(prefix)
        return self.root / prefix

    def uri(self, prefix: str) -> str:
        return self._path(prefix).as_uri()

    def exists(self, prefix: str) -> bool:
        return self._path(prefix).is_dir()

    def put_dir(self, src: Path, prefix: str, files: Mapping[str, str]) -> str:
        final = self._path(prefix)
        if final.is_dir():
            return self.uri(prefix)  # content-addressed prefix: same prefix, same bytes
        staging = self.root / ".staging" / uuid.uuid4().hex
        staging.mkdir(parents=True, mode=0o700)
        try:
            for rel, expected in sorted(files.items()):
                target = staging / check_relpath(rel)
                target.parent.mkdir(parents=True, exist_ok=True)
                h = hashlib.sha256()
                with (src / rel).open("rb") as fin, target.open("wb") as fout:
                    for chunk in iter(lambda: fin.read(CHUNK), b""):
                        h.update(chunk)
                        fout.write(chunk)
                if h.hexdigest() != expected:
                    raise changed_during_upload(rel, expected, h.hexdigest())
                os.chmod(target, 0o400)  # read-only (immutable) and the owner's only
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(staging, final)
            except OSError:
                if not final.is_dir():  # another writer won the race with the same content
                    raise
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return self.uri(prefix)

    def get_dir(self, prefix: str, dest: Path, files: Mapping[str, str]) -> Path:
        base = self._path(prefix)
        if not base.is_dir():
            raise NotFound(f"artifact {self.uri(prefix)} is missing from the local store",
                           hint="the artifact store was altered; restore it from backup or register again")
        dest.mkdir(parents=True, exist_ok=True)
        for rel, expected in sorted(files.items()):
            source = base / check_relpath(rel)
            if not source.is_file():
                raise missing_from_store(rel, self.uri(prefix))
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            verify_fetched(target, rel, expected, self.uri(prefix))
        return dest

    def delete_prefix(self, prefix: str) -> None:
        path = self._path(prefix)
        if path.is_dir():
            for p in path.rglob("*"):
                if p.is_dir():
                    os.chmod(p, 0o700)
            shutil.rmtree(path, ignore_errors=True)

    def list_keys(self, prefix: str) -> list[str]:
        base = self._path(prefix)
        if not base.is_dir():
            return []
        return sorted(str(p.relative_to(self.root)) for p in base.rglob("*") if p.is_file())

    def put_blob(self, key: str, data: bytes) -> str:
        path = self._path(key)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
            tmp.write_bytes(data)
            os.chmod(tmp, 0o400)
            os.replace(tmp, path)
        return path.as_uri()
