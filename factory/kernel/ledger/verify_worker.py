"""A worker process of ``verify_ledger``: checks one range of custody entries and returns its subtrees.

Started as ``python -m factory.kernel.ledger.verify_worker`` with a pickled ``RangeJob`` on stdin;
writes the pickled ``RangeResult`` to stdout. It imports only the standard library, orjson, the
database driver and ``verify_rows`` (not the application: a spawned ``multiprocessing`` worker
re-imports the parent's main module, which for ``factory`` is the whole CLI), and opens the
database directly, read-only on SQLite.
"""

from __future__ import annotations

import pickle
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from factory.kernel.ledger.verify_rows import ROW_COLUMNS, RangeResult, RowWalk, row_batches

SELECT = f"SELECT {', '.join(ROW_COLUMNS)} FROM custody_entry"


@dataclass(frozen=True)
class RangeJob:
    """Entries ``lo <= log_seq < hi`` of ``log`` in the database at ``target`` (a SQLite file or a libpq URI)."""

    dialect: str  # "sqlite" or "postgresql"
    target: str
    log: str
    lo: int
    hi: int
    sizes: frozenset[int]  # tree sizes, counted from ``lo``, whose right edge to return


def open_cursor(dbapi_connection: Any, dialect: str) -> Any:
    """A cursor that streams: server-side on PostgreSQL (a client cursor would hold every row in memory)."""
    return dbapi_connection.cursor(name="custody_rows") if dialect == "postgresql" else dbapi_connection.cursor()


def range_select(dialect: str) -> str:
    """One log's entries between two positions (parameters: log, lo, hi)."""
    mark = "%s" if dialect == "postgresql" else "?"
    return f"{SELECT} WHERE log = {mark} AND log_seq >= {mark} AND log_seq < {mark} ORDER BY log_seq"


def log_select(dialect: str) -> str:
    """One log's entries in position order (parameter: log)."""
    mark = "%s" if dialect == "postgresql" else "?"
    return f"{SELECT} WHERE log = {mark} ORDER BY log_seq"


def check_range(job: RangeJob) -> RangeResult:
    if job.dialect == "sqlite":
        import sqlite3

        conn: Any = sqlite3.connect(Path(job.target).resolve().as_uri() + "?mode=ro", uri=True)
    else:
        import psycopg

        conn = psycopg.connect(job.target)
    try:
        rows = row_batches(open_cursor(conn, job.dialect), range_select(job.dialect), (job.log, job.lo, job.hi))
        return RowWalk(job.lo, None, job.sizes).run(rows, None)
    finally:
        conn.close()


def main() -> None:
    job = pickle.load(sys.stdin.buffer)
    pickle.dump(check_range(job), sys.stdout.buffer)


if __name__ == "__main__":
    main()
