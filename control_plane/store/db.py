"""Engine, sessions and migrations.

Each area owns its tables (``registry/models.py``, ``release/models.py``, ...) on the shared
``Base``; one linear Alembic history in ``store/migrations/versions`` creates them. ``get_engine``
migrates to head on first use, so a new ``$MLCTL_HOME`` or an empty PostgreSQL database just works.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from control_plane.settings import current as settings
from control_plane.settings import mlctl_home

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class Base(DeclarativeBase):
    pass


def database_url() -> str:
    url = settings().db_url
    if url:
        # psycopg 3 is the driver we ship; accept the common spellings.
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url
    return f"sqlite:///{mlctl_home() / 'mlctl.db'}"


_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_conn.cursor()
    # WAL lets readers run while a release writes; busy_timeout serialises concurrent writers
    # (two mlctl processes) instead of failing at once; foreign keys are off by default in SQLite.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    # In WAL mode NORMAL never corrupts the database; a power cut may lose the newest commits (an
    # application crash loses nothing). It spares an fsync per transaction, which is what lets the
    # audit log take one transaction per entry at >1,000/s. What must be durable forces it: a signed
    # audit tree head is committed with synchronous=FULL (flushing every entry it covers) before it
    # is published outside the database (control_plane.audit.trail.checkpoint).
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _create_private(url: str) -> None:
    """Create a new SQLite store readable by its owner only (0600; SQLite gives its -wal and -shm
    files the database file's mode). It holds approvals, signatures and the audit trail: only the
    user running mlctl (or ``mlctl server``) may read it. An existing file is left as it is."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if path.parent.is_dir() and not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def get_engine(url: str | None = None) -> Engine:
    """One migrated engine per URL per process."""
    url = url or database_url()
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            if url.startswith("sqlite"):
                _create_private(url)
                engine = create_engine(url, connect_args={"timeout": 30})
                event.listen(engine, "connect", _sqlite_pragmas)
            else:
                engine = create_engine(url, pool_pre_ping=True)
            upgrade(engine)
            _engines[url] = engine
        return engine


_APPEND_SUFFIX = "#audit-append"


def _commit_without_flush(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_conn.cursor()
    cur.execute("SET synchronous_commit TO off")  # for the session: it outlives this transaction
    cur.close()
    dbapi_conn.commit()  # whether or not SQLAlchemy has switched the connection to autocommit yet


def append_engine(url: str | None = None) -> Engine:
    """The engine audit appends commit on (``control_plane.audit.append``), one per URL per process.

    On SQLite it is :func:`get_engine`'s (synchronous=NORMAL already applies to every connection).
    On PostgreSQL it is a second pool over the same, migrated database whose connections differ in
    three ways, each saving a round trip on an append that is a single statement:

    - they are set to ``synchronous_commit=off`` once, when connected (not with a ``SET LOCAL``
      per transaction; nor with the libpq ``options`` startup parameter, which PgBouncer refuses
      by default). Only this pool: registry, release and signed-head transactions
      keep the server's durable commit, and a signed head's commit flushes the WAL, with every
      entry before it, before the head leaves the database;
    - they run in autocommit: the append is one data-modifying statement, its own transaction,
      so no ``BEGIN``/``COMMIT`` is sent;
    - no pre-ping (an empty query per checkout): the statement is the ping. When a connection
      turns out dead the append cannot know whether its statement committed; it looks, on
      :func:`get_engine`'s pool (which pings) and under the head row's lock, for the entry it
      sent (its sequence number and leaf hash) and appends it only if it is not there.
    """
    url = url or database_url()
    main = get_engine(url)  # migrates once
    if main.dialect.name != "postgresql":
        return main
    with _lock:
        engine = _engines.get(url + _APPEND_SUFFIX)
        if engine is None:
            engine = create_engine(main.url, isolation_level="AUTOCOMMIT")
            event.listen(engine, "connect", _commit_without_flush)
            _engines[url + _APPEND_SUFFIX] = engine
        return engine


def reset_engines() -> None:
    """Forget cached engines (tests switch databases between cases)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A transaction: commit on success, roll back on any error."""
    factory = sessionmaker(bind=get_engine(url), expire_on_commit=False)
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
