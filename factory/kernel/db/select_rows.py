"""Plain rows of a fixed, read-only SELECT, the cheapest way each database allows.

On PostgreSQL the statement goes straight to psycopg's cursor. SQLAlchemy's execution and
result layers cost about twice the CPU of the driver call itself (metadata is rebuilt from the
cursor description for every textual query), which is most of a search by serial, the audit
API's hot path; psycopg still prepares a statement server-side once a connection has run it a
few times. Errors are raised as SQLAlchemy's own exception types, so callers and the API's error
handlers see what they would have seen, and a connection the server has dropped is invalidated
rather than returned to the pool. SQLite goes through SQLAlchemy (its driver call is cheap).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, TextClause, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

# The placeholder syntax of SQLAlchemy's text(): ``:name``, not ``::cast`` or an escaped ``\:``.
_NAMED = re.compile(r"(?<![:\w\\]):(\w+)(?!:)")


@lru_cache(maxsize=512)
def _statement(sql: str) -> TextClause:
    return text(sql)


@lru_cache(maxsize=512)
def _pyformat(sql: str) -> str:
    """``:name`` placeholders as psycopg's ``%(name)s`` (literal ``%`` doubled)."""
    return _NAMED.sub(r"%(\1)s", sql.replace("%", "%%"))


def select_rows(reader: Session | Connection, sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """Rows (as tuples) of ``sql``, written with ``:name`` placeholders and bound ``params``."""
    conn = reader.connection() if isinstance(reader, Session) else reader
    if conn.dialect.name != "postgresql":
        return [tuple(row) for row in conn.execute(_statement(sql), params)]
    statement = _pyformat(sql)
    driver = conn.connection.driver_connection
    dbapi_error: type[Exception] = conn.dialect.loaded_dbapi.Error
    try:
        with driver.cursor() as cursor:  # type: ignore[union-attr]
            cursor.execute(statement, params)
            return cursor.fetchall()  # type: ignore[no-any-return]
    except dbapi_error as exc:
        lost = conn.dialect.is_disconnect(exc, driver, None)
        if lost:
            conn.invalidate(exc)
        raise DBAPIError.instance(
            statement, dict(params), exc, dbapi_error, connection_invalidated=lost, dialect=conn.dialect
        ) from exc
