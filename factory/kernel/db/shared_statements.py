"""Statements built once and run by many threads (the line's runners, its controller, the heartbeat).

Building a statement per call cost more CPU than its round trip, so the hot ones are built once.
But SQLAlchemy fills in parts of a statement lazily, the first time it is compiled (its FROM list,
its column collections, the correlation of its subqueries), and two threads compiling one object
for the first time at once can each act on the other's half-built state. Measured on PostgreSQL,
8 threads starting at once on a freshly built statement and an empty compiled cache, 200 rounds:
the job hold with its device CTE (``line/job_hold.py``) failed 15 times in 1,600 with
NoSuchColumnError ('dev.id'; in CI it failed a tablet job as a controller error) and 8 times
compiled to a cartesian product with the whole device or job table. Built under a lock (one object per
shape) it still compiled wrongly 6 times; built and compiled once before any other thread can
have it, never.

So every statement that outlives a call is made through here: ``warmed`` for one built at import,
``built_once`` for a builder keyed by its arguments.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.expression import ClauseElement

E = TypeVar("E", bound=ClauseElement)

# The databases the factory runs on: a statement is compiled for each, so whichever engine runs it
# first finds every lazily built part already there.
_DIALECTS = (postgresql.dialect(), sqlite.dialect())


def warmed(statement: E) -> E:
    """``statement``, compiled once for each database in this thread before any other can run it."""
    for dialect in _DIALECTS:
        statement.compile(dialect=dialect)
    return statement


def built_once(build: Callable[..., E]) -> Callable[..., E]:
    """Like ``functools.cache`` for a statement builder whose statements several threads run: one
    statement per (hashable) argument tuple, built and warmed under a lock, so no thread gets a
    statement another thread is still building or compiling for the first time."""
    statements: dict[tuple[Hashable, ...], E] = {}
    lock = threading.Lock()

    @functools.wraps(build)
    def statement(*key: Any) -> E:
        found = statements.get(key)  # a plain dict read: atomic, and only ever finds warmed statements
        if found is not None:
            return found
        with lock:
            if key not in statements:
                statements[key] = warmed(build(*key))
            return statements[key]

    return statement
