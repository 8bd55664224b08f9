"""What a database refusal means to the caller, decided once for the API and the CLI.

Input the schema admits but the database cannot store (an id beyond the column's range, a NUL
byte in text for PostgreSQL) is the caller's bad input; a uniqueness race that the services' own
checks could not see (two requests at once) is a conflict to retry. In both the transaction has
rolled back, so nothing was stored. Anything else is a real failure and stays one.
"""

from __future__ import annotations

from sqlalchemy.exc import DataError, IntegrityError, StatementError

from factory.kernel.errors import Conflict, FactoryError, InvalidInput

# Every SQLAlchemy error raised while running a statement (DataError and IntegrityError included).
StorageError = StatementError


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
