"""The pinned hashing configuration and the fast digest of a model directory.

The configuration is fixed here, not chosen per call: the signer writes it into the signed
statement (``predicate.serialization``) and the verifier refuses any bundle whose configuration
differs, so an attacker cannot widen the ignore list or switch algorithms to hide a file.

Digests are per-file SHA-256, exactly what model-signing's ``files`` serialization computes, so
the bundles we produce verify with the upstream verifier. We hash the files ourselves because that
is where the time goes: one thread per file (hashlib releases the GIL on large buffers, so threads
run on every core) with 1 MiB ``readinto`` reads into a reused buffer, largest files first.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from control_plane.errors import VerificationFailed

# The signature file may live inside the model directory; it must never be part of what it signs.
SIGNATURE_FILENAME = "model.sig"
_READ_CHUNK = 1 << 20  # 1 MiB: as fast as larger buffers with SHA-NI, and cache-friendly
_MAX_THREADS = 32


@dataclass(frozen=True)
class HashingConfig:
    """What model-signing calls the serialization: method, algorithm, symlinks, ignore list."""

    method: str = "files"
    hash_type: str = "sha256"
    allow_symlinks: bool = False
    # Paths relative to the model root. Git metadata is NOT ignored: everything shipped is covered.
    ignore_paths: tuple[str, ...] = (SIGNATURE_FILENAME,)

    def serialization_parameters(self) -> dict[str, Any]:
        """Exactly the ``predicate.serialization`` object model-signing writes for this configuration
        (``manifest._FileSerialization.serialization_parameters``; a test holds the two equal)."""
        params: dict[str, Any] = {
            "method": self.method,
            "hash_type": self.hash_type,
            "allow_symlinks": self.allow_symlinks,
        }
        if self.ignore_paths:
            params["ignore_paths"] = list(self.ignore_paths)
        return params

    def upstream(self) -> Any:
        """The same configuration as a ``model_signing.hashing.Config`` (for the upstream verifier)."""
        from model_signing import hashing

        return (
            hashing.Config()
            .use_file_serialization(hashing_algorithm="sha256", allow_symlinks=self.allow_symlinks)
            .set_ignored_paths(paths=list(self.ignore_paths), ignore_git_paths=False)
        )


PINNED = HashingConfig()


@dataclass(frozen=True)
class Problem:
    """One reason a model directory does not match (or cannot be signed): always names the path."""

    kind: str  # symlink | special-file | extra | missing | renamed | changed | unreadable
    path: str
    detail: str

    def __str__(self) -> str:
        return self.detail


class ModelVerificationFailed(VerificationFailed):
    """A model directory or bundle was refused; ``problems`` lists every reason (each names a file)."""

    def __init__(
        self, message: str, *, problems: list[Problem] | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.problems = problems or []


@dataclass(frozen=True)
class ModelFile:
    relpath: str  # POSIX, relative to the model root
    path: Path
    size: int


@dataclass(frozen=True)
class ModelDigests:
    model_name: str
    root_digest: str  # sha256 hex over the per-file digests in manifest order (the subject digest)
    files: Mapping[str, str] = field(default_factory=dict)  # relpath -> sha256 hex


def _check_root(model_dir: Path) -> None:
    try:
        st = os.lstat(model_dir)
    except FileNotFoundError:
        raise ModelVerificationFailed(
            f"model directory {model_dir} does not exist",
            problems=[Problem("missing", ".", f"{model_dir} does not exist")],
            hint="pass the directory holding the model files",
        ) from None
    if stat.S_ISLNK(st.st_mode):
        raise ModelVerificationFailed(
            f"model directory {model_dir} is a symlink",
            problems=[Problem("symlink", ".", f"{model_dir} is a symlink")],
            hint="pass the real directory (symlinks are refused: they can point outside the model)",
        )
    if not stat.S_ISDIR(st.st_mode):
        raise ModelVerificationFailed(
            f"{model_dir} is not a directory",
            problems=[Problem("special-file", ".", f"{model_dir} is not a directory")],
            hint="pass the directory holding the model files",
        )


def _ignored(rel: PurePosixPath, config: HashingConfig) -> bool:
    return any(rel.is_relative_to(PurePosixPath(p)) for p in config.ignore_paths)


def scan(model_dir: Path, config: HashingConfig = PINNED) -> list[ModelFile]:
    """Every regular file under ``model_dir`` (minus the ignore list). Symlinks and special files
    are refused outright, wherever they are: a link can point outside the model or change later."""
    _check_root(model_dir)
    files: list[ModelFile] = []
    problems: list[Problem] = []
    stack = [model_dir]
    while stack:
        current = stack.pop()
        try:
            entries = list(os.scandir(current))
        except OSError as exc:
            rel = current.relative_to(model_dir).as_posix()
            problems.append(Problem("unreadable", rel, f"'{rel}' cannot be listed: {exc.strerror}"))
            continue
        for entry in entries:
            path = Path(entry.path)
            relpath = PurePosixPath(path.relative_to(model_dir).as_posix())
            rel = str(relpath)
            st = entry.stat(follow_symlinks=False)
            if _ignored(relpath, config):
                # An ignored name must hold a signature file and nothing else: a directory called
                # model.sig would otherwise hide whatever it contains from the signature.
                if rel == SIGNATURE_FILENAME and not stat.S_ISREG(st.st_mode):
                    problems.append(
                        Problem(
                            "not-a-file", rel, f"'{rel}' is reserved for the signature file but is not a file"
                        )
                    )
                continue
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(path)
                problems.append(Problem("symlink", str(rel), f"'{rel}' is a symlink (to {target}); refused"))
            elif stat.S_ISDIR(st.st_mode):
                stack.append(path)
            elif stat.S_ISREG(st.st_mode):
                files.append(ModelFile(str(rel), path, st.st_size))
            else:
                problems.append(
                    Problem("special-file", str(rel), f"'{rel}' is not a regular file or directory; refused")
                )
    if problems:
        raise ModelVerificationFailed(
            f"{model_dir}: {problems[0]}" + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
            problems=problems,
            hint="a model directory holds only regular files and directories: replace links by the files",
        )
    return files


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    buf = bytearray(_READ_CHUNK)
    view = memoryview(buf)
    # O_NOFOLLOW: a file swapped for a symlink after the scan is refused, not followed.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with open(fd, "rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def hash_files(files: list[ModelFile]) -> dict[str, str]:
    """SHA-256 of each file, in parallel. One thread per file (capped) rather than one per core: with
    a few large files, more threads than cores share the cores evenly and finish together."""
    if not files:
        return {}
    ordered = sorted(files, key=lambda f: f.size, reverse=True)
    workers = min(len(ordered), _MAX_THREADS)
    if workers == 1:
        return {ordered[0].relpath: _sha256_file(ordered[0].path)}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sha256") as pool:
        digests = pool.map(lambda f: _sha256_file(f.path), ordered)
        return {f.relpath: d for f, d in zip(ordered, digests, strict=True)}


def manifest_order(files: Mapping[str, str]) -> dict[str, str]:
    """The files in model-signing's manifest order: by path components (``PurePosixPath`` order),
    which differs from plain string order ('a/b' sorts before 'a-c')."""
    return {rel: files[rel] for rel in sorted(files, key=PurePosixPath)}


def root_digest_of(files: Mapping[str, str]) -> str:
    """The in-toto subject digest model-signing computes: sha256 over the raw per-file digests, in
    manifest order."""
    h = hashlib.sha256()
    for digest in manifest_order(files).values():
        h.update(bytes.fromhex(digest))
    return h.hexdigest()


def model_name_for(model_dir: Path) -> str:
    return model_dir.name or os.path.basename(model_dir.resolve())


def model_digests(model_dir: str | Path, config: HashingConfig = PINNED) -> tuple[str, dict[str, str]]:
    """(root digest, {relpath: sha256 hex}) of a model directory with the pinned configuration.
    The root digest is what the signature's in-toto subject carries and provenance refers to."""
    digests = compute(Path(model_dir), config)
    return digests.root_digest, dict(digests.files)


def compute(model_dir: Path, config: HashingConfig = PINNED) -> ModelDigests:
    files = manifest_order(hash_files(scan(model_dir, config)))
    return ModelDigests(model_name_for(model_dir), root_digest_of(files), files)
