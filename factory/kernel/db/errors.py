"""What a database refusal means to the caller, decided once for the API and the CLI.

Input the schema admits but the database cannot store (an id beyond the column's range, a NUL
byte in text for PostgreSQL) is the caller's bad input; a uniqueness race that the services' own
checks could not see (two requests at once) is a conflict to retry. In both the transaction has
rolled back, so nothing was stored. Anything else is a real failure and stays one.
"""

from __future__ import annotations

import sqlite3

import psycopg
from sqlalchemy.exc import DataError, IntegrityError, OperationalError, StatementError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from factory.kernel.errors import Conflict, FactoryError, InvalidInput

# Every SQLAlchemy error raised while running a statement (DataError and IntegrityError included).
StorageError = StatementError
# What a caller meets when the database cannot be had in time (try again shortly): no pooled
# connection came free, or SQLite's write lock did not (raised bare by the engine's begin hook;
# wrapped in StorageError when SQLite's own busy timeout ran out).
BUSY_ERRORS: tuple[type[BaseException], ...] = (PoolTimeout, sqlite3.OperationalError)


def is_busy(exc: BaseException) -> bool:
    """True when ``exc`` means "the database cannot serve this now, try again", not a fault or bad
    input: at capacity (pool, SQLite's write lock), or a PostgreSQL server unreachable or failing
    over (the connection was refused or closed; a promoted standby takes over within seconds)."""
    if isinstance(exc, PoolTimeout):
        return True
    orig = exc.orig if isinstance(exc, OperationalError) else exc
    if isinstance(orig, psycopg.OperationalError):
        return True
    return isinstance(orig, sqlite3.OperationalError) and "locked" in str(orig)


def busy_cause(exc: BaseException) -> str:
    """What a busy error (``is_busy``) was, in a reason's words: a transaction PostgreSQL rolled back
    to break a deadlock or a serialisation conflict is not a lost connection, and a technician
    reading "connection lost" would look for the wrong fault."""
    orig = exc.orig if isinstance(exc, OperationalError) else exc
    if isinstance(orig, psycopg.errors.DeadlockDetected):
        return "database deadlock (the transaction was rolled back)"
    if isinstance(orig, psycopg.errors.TransactionRollback):
        return "database conflict (the transaction was rolled back)"
    return "database connection lost"


def as_factory_error(exc: StatementError) -> FactoryError | None:
    """The typed error a storage refusal stands for, or None when it is not the caller's doing."""
    if isinstance(exc, DataError):
        text = str(exc.orig).strip()
        first = text.splitlines()[0] if text else "invalid value"
        return InvalidInput(f"value cannot be stored: {first}")
    if isinstance(exc, IntegrityError):
        return Conflict("conflicts with a record stored meanwhile; retry")
    if isinstance(exc.orig, OverflowError | ValueError):
        return InvalidInput("a value is out of the supported range")
    return None
