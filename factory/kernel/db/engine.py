"""Engine construction for the two supported databases.

SQLite (embedded default) runs in WAL mode and every transaction starts with ``BEGIN IMMEDIATE``:
SQLite has no row locks, so taking the write lock up front is what serialises state changes
and ledger appends (and avoids the deadlock-prone read-then-upgrade pattern).
PostgreSQL uses row locks (``SELECT ... FOR NO KEY UPDATE``) and a transaction-scoped advisory lock
for the ledger head.

Within one process, SQLite writers also queue on a per-database ``threading.Lock`` before
``BEGIN IMMEDIATE``. SQLite's own busy handler makes a waiter sleep and retry (sleeps growing to
100 ms), so with dozens of writer threads the lock sat free while waiters slept and a newcomer
could overtake them again and again; a process lock hands over at once. Writers in other
processes still meet at SQLite's lock, as before.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlmodel import Session

from factory.kernel.db.postgres import postgres_engine

SQLITE_BUSY_TIMEOUT_MS = 30_000
READ_ONLY = "factory_read_only"


_WRITE_LOCKS: dict[str, threading.Lock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def _write_lock(path: str) -> threading.Lock:
    key = str(Path(path).resolve())
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(key, threading.Lock())


class _WriterConnection(sqlite3.Connection):
    """A sqlite3 connection that gives back the process's writer lock when its transaction ends."""

    write_lock: threading.Lock | None = None
    holding = False

    def take_write_lock(self) -> None:
        if self.write_lock is None:
            return
        if not self.write_lock.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
            raise sqlite3.OperationalError("database is locked (waited for this process's other writers)")
        self.holding = True

    def release_write_lock(self) -> None:
        if self.holding:
            self.holding = False
            self.write_lock.release()  # type: ignore[union-attr]

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.release_write_lock()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.release_write_lock()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.release_write_lock()


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url, **kwargs)
    return postgres_engine(url, **kwargs)


def _private_database_file(path: Path) -> None:
    """Create the database file (and a missing folder) readable by its owner only, before SQLite opens it.

    Custody evidence and token hashes live in it; SQLite gives its -wal and -shm files the mode of the
    database file, so the three stay 0600. A file left 0644 by an older version is tightened too.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if file.exists() and file.stat().st_mode & 0o077 and file.stat().st_uid == os.geteuid():
            file.chmod(0o600)


def _sqlite_engine(url: str, **kwargs: Any) -> Engine:
    path = url.split(":///", 1)[1] if ":///" in url else ""
    if path and path != ":memory:":
        _private_database_file(Path(path))
    lock = _write_lock(path) if path and path != ":memory:" else None
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 30, "factory": _WriterConnection}, **kwargs
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" hook below issue BEGIN itself.
        dbapi_conn.isolation_level = None
        dbapi_conn.write_lock = lock
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Read-only units (read_scope) take a plain deferred BEGIN: a WAL snapshot, no write lock.
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")
            return
        dbapi_conn = conn.connection.dbapi_connection
        dbapi_conn.take_write_lock()
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            dbapi_conn.release_write_lock()
            raise

    return engine


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One unit of work: commit on success, roll back everything on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def read_scope(engine: Engine) -> Iterator[Connection]:
    """A read-only connection: never takes SQLite's write lock; rolled back at the end."""
    with engine.connect().execution_options(**{READ_ONLY: True}) as conn:
        try:
            yield conn
        finally:
            conn.rollback()
