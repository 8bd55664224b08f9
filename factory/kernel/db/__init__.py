"""Database engine, sessions and migrations."""

from factory.kernel.db.engine import make_engine, session_scope

__all__ = ["make_engine", "session_scope"]
