"""The Store port: SQLAlchemy 2 over SQLite (default, under $MLCTL_HOME) or PostgreSQL
(``MLCTL_DB_URL``), schema managed by Alembic migrations in ``store/migrations``."""

from control_plane.store.db import Base, database_url, get_engine, session_scope, upgrade

__all__ = ["Base", "database_url", "get_engine", "session_scope", "upgrade"]
