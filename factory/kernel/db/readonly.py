"""A read-only connection straight from the database driver, for one-shot CLI reads.

``factory device show`` is read at a terminal, one device at a time: going through SQLAlchemy and
SQLModel would cost more start-up than everything else the command does (importing them is most
of a second on a busy machine). Such a reader opens sqlite3 or psycopg itself, checks the schema is
at the migrations' head as every CLI command does, and runs fixed SELECTs written with ``?``
placeholders. Writes never go this way: everything that changes state keeps the session path.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from factory.kernel.db.migrate import VERSION_TABLE, head_revision
from factory.kernel.errors import FactoryError


class DatabaseUnavailable(FactoryError):
    """The database cannot be read, or its schema is not at the migrations' head."""


class Reader(Protocol):
    def rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]: ...


class _Reader:
    def __init__(self, conn: Any, postgres: bool) -> None:
        self.conn = conn
        self.postgres = postgres

    def rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        # The statements are fixed text with no literal '?' or '%': psycopg spells the placeholder %s.
        statement = sql.replace("?", "%s") if self.postgres else sql
        try:
            return [tuple(row) for row in self.conn.execute(statement, tuple(params)).fetchall()]
        except Exception as exc:  # sqlite3.Error or psycopg.Error: one line, as every CLI error is
            raise DatabaseUnavailable(f"database error: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def safe_url(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def _connect(url: str) -> tuple[Any, bool]:
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if not path or path == ":memory:" or not Path(path).exists():
            return None, False  # nothing there: "not initialised", as the session path says
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, timeout=30)
        conn.execute("BEGIN")  # one snapshot for every SELECT of the read, as one session would have
        return conn, False
    import psycopg  # only PostgreSQL sites pay for the driver
    from psycopg.conninfo import conninfo_to_dict

    conninfo = "postgresql://" + url.split("://", 1)[1]
    try:
        if not url.startswith("postgresql"):
            raise ValueError("only sqlite and postgresql databases are supported")
        conninfo_to_dict(conninfo)  # a malformed URL is the configuration's fault, named as such
    except (ValueError, psycopg.ProgrammingError) as exc:
        raise DatabaseUnavailable(
            f"configuration: FACTORY_DATABASE_URL {safe_url(url)} is not a database URL: {_first_line(exc)}"
        ) from exc
    conn = psycopg.connect(conninfo)
    # One read-only snapshot for every SELECT of the read (closing the connection ends it).
    conn.isolation_level, conn.read_only = psycopg.IsolationLevel.REPEATABLE_READ, True
    return conn, True


@contextmanager
def read_only(url: str) -> Iterator[Reader]:
    """A reader on ``url`` (a FACTORY_DATABASE_URL as Settings spell it), closed when the block ends.

    :raises DatabaseUnavailable: it cannot be opened, or its schema is not at the head.
    """
    try:
        conn, postgres = _connect(url)
    except DatabaseUnavailable:
        raise
    except Exception as exc:  # sqlite3.Error, psycopg.Error: the server down, a wrong password...
        raise DatabaseUnavailable(f"database error: {_first_line(exc)}") from exc
    try:
        current = _revision(_Reader(conn, postgres)) if conn is not None else None
        if conn is None or current != head_revision():
            raise DatabaseUnavailable(
                f"database at {safe_url(url)} is not initialised or not up to date "
                f"(revision {current}); run 'factory db upgrade'"
            )
        yield _Reader(conn, postgres)
    finally:
        if conn is not None:
            conn.close()


def _revision(reader: _Reader) -> str | None:
    try:
        rows = reader.rows(f"SELECT version_num FROM {VERSION_TABLE}", ())
    except DatabaseUnavailable:
        return None  # no version table: never migrated
    return str(rows[0][0]) if len(rows) == 1 else None
