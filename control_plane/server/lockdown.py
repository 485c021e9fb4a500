"""Start-up checks of ``mlctl server``: the store and the identity file are the server's alone.

The server is the only way to change staging and prod: whoever can write its store (approvals,
signatures, the audit trail) or its identity file (which groups are approvers) could bypass every
check it makes. So before it listens it refuses to start, naming the file and the fix, when:

- ``$MLCTL_HOME`` is not owned by the server's user or grants other users any access (it holds the
  SQLite store, the signing keys and the audit trail's local copies): ``chmod 700``;
- the SQLite store (and its ``-wal``/``-shm`` files) is not owned by the server's user or is
  readable or writable by anyone else: ``chmod 600`` (new stores are created 0600);
- the identity file or the signing keyring (``keyring.yaml``: which keys a release may be signed
  with), or the directory either lives in, is writable by other users, or the file is owned by
  someone other than the server's user or root (root-owned, read-only configuration such as a
  mounted secret is fine: root can change anything anyway);
- a PostgreSQL store URL carries a password, unless the server is ``--insecure-dev``: a URL is
  copied into logs, shell history and ``/proc/<pid>/environ``; the password comes from a
  ``PGPASSFILE`` (or ``~/.pgpass``) readable only by the server's user, which libpq reads itself.

``IdentityWatch`` records the identity file's digest in the audit trail when the server starts and
records every change the server reloads (who may approve is itself audited).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import make_url

from control_plane import audit, identity
from control_plane.audit.models import AuditRow
from control_plane.errors import MlctlError, PolicyViolation
from control_plane.identity import Actor, config
from control_plane.settings import mlctl_home
from control_plane.signing import keyring
from control_plane.store import database_url, session_scope

__all__ = ["IdentityWatch", "check"]

# Who records what the server found at start-up and on reload (no request's caller did it).
SERVER_ACTOR = Actor("mlctl-server", "os-user", [])
_OTHERS_ANY = stat.S_IRWXG | stat.S_IRWXO
_OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH


def _refuse(path: Path, what: str, fix: str) -> PolicyViolation:
    return PolicyViolation(f"mlctl server will not start: {path} {what}", hint=fix)


def _owner_fix(path: Path) -> str:
    return f"run the server as the file's owner, or: chown {os.geteuid()} {path}"


def _private(path: Path, what: str, mode_fix: int, *, root_ok: bool = False, mask: int = _OTHERS_ANY) -> None:
    st = path.stat()
    if st.st_uid != os.geteuid() and not (root_ok and st.st_uid == 0):
        raise _refuse(path, f"({what}) is owned by uid {st.st_uid}, not the server's user (uid {os.geteuid()})",
                      _owner_fix(path))
    mode = stat.S_IMODE(st.st_mode)
    if mode & mask:
        others = "readable or writable" if mask == _OTHERS_ANY else "writable"
        raise _refuse(path, f"({what}) is {others} by other users (mode {mode:o})", f"chmod {mode_fix:o} {path}")


def _check_home() -> None:
    _private(mlctl_home(), "$MLCTL_HOME: the store, keys and audit copies", 0o700)


def _check_sqlite(url: str) -> None:
    database = make_url(url).database
    if not database or database == ":memory:":
        return
    db = Path(database)
    for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        if path.exists():
            _private(path, "the SQLite store", 0o600)


def _check_postgres(url: str, *, insecure_dev: bool) -> None:
    parsed = make_url(url)
    if not insecure_dev and (parsed.password or "password" in parsed.query):
        raise PolicyViolation(
            "mlctl server will not start: MLCTL_DB_URL carries the PostgreSQL password",
            hint="drop it from the URL and put it in a PGPASSFILE readable only by the server's user "
                 "(chmod 600; line host:port:database:user:password); libpq reads it itself",
        )
    passfile = os.environ.get("PGPASSFILE")
    if passfile and Path(passfile).exists():
        _private(Path(passfile), "PGPASSFILE: the store's password", 0o600)


def _check_configuration(path: Path, what: str) -> None:
    """Configuration the server trusts (readable by others is fine; writable is not, nor is its
    directory, where the file could be replaced)."""
    if not path.exists():
        return
    real = path.resolve()  # a mounted secret is a symlink into its data directory
    _private(real, what, 0o600, root_ok=True, mask=_OTHERS_WRITE)
    parent = real.parent
    st = parent.stat()
    if stat.S_IMODE(st.st_mode) & _OTHERS_WRITE and not st.st_mode & stat.S_ISVTX:
        raise _refuse(parent, f"(holds {real.name}: {what}) is writable by other users "
                              f"(mode {stat.S_IMODE(st.st_mode):o}): they could replace it", f"chmod go-w {parent}")


def check(*, insecure_dev: bool) -> None:
    """Refuse to start (PolicyViolation naming the file and the fix) unless the store and the
    identity file are the server's alone (the module docstring lists the checks)."""
    _check_home()
    url = database_url()
    if url.startswith("sqlite"):
        _check_sqlite(url)
    elif url.startswith("postgresql"):
        _check_postgres(url, insecure_dev=insecure_dev)
    # Without an identity file no issuer is trusted: every request is a 401 and /readyz says why.
    _check_configuration(config.identity_file(), "the identity file: who holds which role")
    _check_configuration(keyring.keyring_file(), "the signing keyring: which keys releases trust")


def _digest(path: Path) -> str | None:
    try:
        return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def _last_recorded(path: str) -> str | None:
    """The digest of ``path`` the trail last recorded (a previous server's), if any."""
    with session_scope() as s:
        rows = s.execute(select(AuditRow.digests).where(AuditRow.action.in_(("identity.loaded", "identity.changed")),
                                                        AuditRow.subject == f"identity-file:{path}")
                         .order_by(AuditRow.seq.desc()).limit(1)).scalars().all()
    if not rows:
        return None
    value = json.loads(rows[0]).get("identity_file")
    return str(value) if value else None


class IdentityWatch:
    """Audits the identity file: its digest at start-up (``identity.loaded``, or ``identity.changed``
    when it differs from what a previous server recorded) and each change the server reloads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._path: str | None = None
        self._digest: str | None = None
        self._seen: tuple[str, int, int] | None = None  # path, mtime_ns, size when last digested

    def _record(self, action: str, path: Path, digest: str | None, previous: str | None) -> None:
        details: dict[str, Any] = {"path": str(path)}
        if previous is not None:
            details["previous"] = previous
        try:
            loaded = identity.verifier() if digest is not None else None
        except MlctlError as exc:  # an invalid file is recorded too; requests then get its error
            loaded, details["invalid"] = None, exc.message
        if loaded is not None:
            details["issuers"] = [i.issuer for i in loaded.config.issuers]
            details["audience"] = loaded.config.audience
        with identity.acting(SERVER_ACTOR):
            audit.record(action=action, subject=f"identity-file:{path}",
                         digests={"identity_file": digest} if digest else None,
                         reasons=[] if digest else ["the identity file is gone: no issuer is trusted"],
                         details=details)

    @staticmethod
    def _stat_key(path: Path) -> tuple[str, int, int]:
        try:
            st = path.stat()
        except FileNotFoundError:
            return (str(path), -1, -1)
        return (str(path), st.st_mtime_ns, st.st_size)

    def start(self) -> None:
        path = config.identity_file()
        seen = self._stat_key(path)
        digest = _digest(path)
        previous = _last_recorded(str(path))
        with self._lock:
            self._path, self._digest, self._seen = str(path), digest, seen
        changed = previous is not None and previous != digest
        self._record("identity.changed" if changed else "identity.loaded", path, digest,
                     previous if changed else None)

    def check(self) -> None:
        """Record a change of the identity file since the last check (called per request, cheap:
        one stat and, only when the file's metadata moved, one read)."""
        path = config.identity_file()
        seen = self._stat_key(path)
        if seen == self._seen:
            return
        digest = _digest(path)
        with self._lock:
            self._seen = seen
            if str(path) == self._path and digest == self._digest:
                return  # touched, not changed
            previous, self._path, self._digest = self._digest, str(path), digest
        self._record("identity.changed", path, digest, previous)
