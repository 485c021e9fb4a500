"""The tar layouts ``mlctl server`` and its client exchange model bytes in (``model register``
uploads, ``model export`` downloads), in one place so the two sides cannot drift.

Upload: ``request.json`` (the register flags as JSON), ``model/<files>`` and, with ``--config``,
``config/<file>``. Export: ``model/<files>`` (with ``model.sig``) and ``public_key.pem``.

Unpacking is strict: only regular files and directories, relative paths inside the archive (the
standard library's ``data`` extraction filter), no sparse files, and the members' total size under
the caller's limit, so an archive cannot write outside its directory or expand past the limit.
"""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from control_plane.errors import MlctlError, UsageError

__all__ = ["EXPORT_HEADER", "Upload", "pack_export", "pack_files", "pack_upload", "unpack_export", "unpack_files",
           "unpack_upload"]

EXPORT_HEADER = "X-Mlctl-Export"  # the export's JSON (ExportResult.as_dict) beside the tar
_REQUEST = "request.json"
_MODEL = "model"
_CONFIG = "config"
_KEY = "public_key.pem"


@dataclass(frozen=True)
class Upload:
    request: dict[str, Any]
    model_dir: Path
    config: Path | None


def _add_request(tar: tarfile.TarFile, request: dict[str, Any]) -> None:
    """``request.json``, the first member of every upload."""
    body = json.dumps(request).encode()
    info = tarfile.TarInfo(_REQUEST)
    info.size = len(body)
    tar.addfile(info, io.BytesIO(body))


def pack_upload(request: dict[str, Any], model_dir: Path, config: Path | None, out: Path) -> Path:
    """The upload tar of ``model_dir`` (its files, as ``mlctl model register`` reads them)."""
    if not model_dir.is_dir():
        raise UsageError(f"--path {model_dir}: not a directory", hint="give the directory holding the model files")
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        _add_request(tar, request)
        tar.add(model_dir, arcname=_MODEL, recursive=True)
        if config is not None:
            tar.add(config, arcname=f"{_CONFIG}/{config.name}")
    return out


def pack_export(model_dir: Path, public_key: Path, out: Path) -> Path:
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(model_dir, arcname=_MODEL, recursive=True)
        tar.add(public_key, arcname=_KEY)
    return out


def _extract(archive: Path, into: Path, limit: int, what: str) -> None:
    try:
        with tarfile.open(archive, "r:") as tar:
            total = 0
            members = tar.getmembers()
            for m in members:
                if not (m.isfile() or m.isdir()) or m.issparse():
                    raise UsageError(f"{what}: {m.name!r} is not a plain file or directory",
                                     hint="upload regular files only (no links or devices)")
                total += m.size
                if total > limit:
                    raise UsageError(f"{what}: the files are over the limit of {limit // (1024 * 1024)} MiB",
                                     hint="register a smaller model")
            into.mkdir(parents=True, exist_ok=True)
            tar.extractall(into, members=members, filter="data")
    except tarfile.TarError as exc:
        raise UsageError(f"{what}: not a tar archive mlctl can read ({exc})",
                         hint="send the body `mlctl model register` builds (application/x-tar)") from None


def _unpack_request(archive: Path, into: Path, limit: int, hint: str) -> dict[str, Any]:
    """Extract an upload under ``into`` and read its request (the JSON object every upload starts with)."""
    _extract(archive, into, limit, "upload")
    try:
        request = json.loads((into / _REQUEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"upload: {_REQUEST} is missing or not JSON ({exc})", hint=hint) from None
    if not isinstance(request, dict):
        raise UsageError(f"upload: {_REQUEST} is not a JSON object", hint=hint)
    return request


def unpack_upload(archive: Path, into: Path, limit: int) -> Upload:
    request = _unpack_request(archive, into, limit, "send the body `mlctl model register` builds")
    model_dir = into / _MODEL
    if not model_dir.is_dir():
        raise UsageError("upload: no model/ directory in the archive", hint="send the body `mlctl model register` builds")
    configs = sorted((into / _CONFIG).glob("*")) if (into / _CONFIG).is_dir() else []
    return Upload(request, model_dir, configs[0] if configs else None)


def unpack_export(archive: Path, into: Path, limit: int) -> tuple[Path, bytes]:
    """The exported model directory (under ``into``) and the signer's public key."""
    _extract(archive, into, limit, "export")
    try:
        return into / _MODEL, (into / _KEY).read_bytes()
    except OSError:
        raise MlctlError("the server's export has no public key", hint="check the server's version") from None


# --- data files (``monitor drift``, ``pii scan``) ----------------------------------------------
# ``request.json`` and ``files/<slot>/<name>``: each slot one file or directory of the client's, under
# its own base name (readers choose the format by suffix).
_FILES = "files"


def pack_files(request: dict[str, Any], files: dict[str, Path], out: Path) -> Path:
    """The upload tar of ``files`` (slot -> a file or directory on this machine) with ``request``."""
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        _add_request(tar, request)
        for slot, path in files.items():
            tar.add(path, arcname=f"{_FILES}/{slot}/{path.name}", recursive=True)
    return out


def unpack_files(archive: Path, into: Path, limit: int) -> tuple[dict[str, Any], dict[str, Path]]:
    """``pack_files``' request and slot -> the unpacked file or directory (under ``into``)."""
    request = _unpack_request(archive, into, limit, "send the body the mlctl client builds")
    files: dict[str, Path] = {}
    root = into / _FILES
    for slot in sorted(root.iterdir()) if root.is_dir() else []:
        entries = sorted(slot.iterdir())
        if len(entries) != 1:
            raise UsageError(f"upload: files/{slot.name} holds {len(entries)} entries, not one",
                             hint="send the body the mlctl client builds")
        files[slot.name] = entries[0]
    return request, files
