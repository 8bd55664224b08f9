"""Consistent copies of the database, taken while the service runs, and loading them back.

SQLite: the online backup API copies the pages under one read transaction, so the copy is a
snapshot even while writers commit (in WAL mode they are not blocked). The copy is switched to
rollback-journal mode so it stays one file whose digest does not change when it is read.

PostgreSQL: ``pg_dump`` (plain SQL, no owners or grants, so it loads into another database or
role) run on a snapshot exported by a repeatable-read transaction of ours, in which we also read
the ledger head: the head returned is exactly the head inside the dump. ``psql`` loads it back in
one transaction, after dropping and re-creating the ``public`` schema: a failed load changes
nothing. Debian's ``postgresql-client`` provides both.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import URL, make_url

from factory.kernel.errors import FactoryError

SQLITE_FILE = "database.sqlite3"
POSTGRES_FILE = "database.sql"
HEAD_QUERY = "SELECT seq, entry_hash FROM custody_entry ORDER BY seq DESC LIMIT 1"
_RESET_SCHEMA = "DROP SCHEMA IF EXISTS public CASCADE;\nCREATE SCHEMA public;\n"

Head = tuple[int, str] | None  # (seq, entry_hash) of the last custody entry; None for an empty ledger


class DatabaseCopyError(FactoryError, status=409, code="database_copy"):
    """The database could not be copied or loaded (the reason names the tool and its message)."""


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def dump_database(url: str, directory: Path) -> tuple[Path, Head]:
    """Write a consistent copy into ``directory``; return its file and the ledger head inside it."""
    if is_sqlite(url):
        return _sqlite_dump(sqlite_path(url), directory / SQLITE_FILE)
    return _postgres_dump(url, directory / POSTGRES_FILE)


def load_database(url: str, source: Path) -> None:
    """Replace the database at ``url`` by the copy in ``source`` (all or nothing)."""
    if is_sqlite(url):
        _sqlite_load(source, sqlite_path(url))
    else:
        _run_tool(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "-f", "-", "-f", str(source)],
                  url, stdin=_RESET_SCHEMA)  # fmt: skip


def has_rows(engine: Engine) -> bool:
    """Whether any table but Alembic's version table holds a row (a migrated, unused database has none)."""
    with engine.connect() as conn:
        tables = [t for t in inspect(conn).get_table_names() if t != "alembic_version"]
        preparer = engine.dialect.identifier_preparer
        return any(conn.execute(text(f"SELECT 1 FROM {preparer.quote(t)} LIMIT 1")).first() for t in tables)


@contextmanager
def scratch_copy(url: str, source: Path) -> Iterator[str]:
    """The copy loaded into a throwaway database beside ``url`` (same server or folder), for checking."""
    if is_sqlite(url):
        with tempfile.TemporaryDirectory(prefix="factory-restore-") as tmp:
            target = Path(tmp) / SQLITE_FILE
            shutil.copyfile(source, target)
            yield f"sqlite:///{target}"
        return
    base = make_url(url)
    name = f"{base.database}_restore_check_{secrets.token_hex(4)}"[-63:]
    _admin(url, f'CREATE DATABASE "{name}"')
    try:
        scratch = base.set(database=name).render_as_string(hide_password=False)
        load_database(scratch, source)
        yield scratch
    finally:
        _admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise DatabaseCopyError("an in-memory SQLite database cannot be backed up or restored")
    return Path(database)


def _sqlite_dump(source: Path, dest: Path) -> tuple[Path, Head]:
    if not source.exists():
        raise DatabaseCopyError(f"no database at {source}")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)  # the backup never writes to the live database
    dst = sqlite3.connect(_private_file(dest))
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")
        row = dst.execute(HEAD_QUERY).fetchone()
    except sqlite3.Error as exc:
        raise DatabaseCopyError(f"SQLite backup of {source} failed: {exc}") from exc
    finally:
        src.close()
        dst.close()
    return dest, (int(row[0]), str(row[1])) if row else None


def _sqlite_load(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(_private_file(target), timeout=30)
    try:
        src.backup(dst)  # one transaction on the target: readers see the old or the new database
        dst.execute("PRAGMA journal_mode=WAL")  # the mode the service runs in
    except sqlite3.Error as exc:
        raise DatabaseCopyError(f"SQLite restore into {target} failed: {exc}") from exc
    finally:
        src.close()
        dst.close()


def _private_file(path: Path) -> Path:
    """Create ``path`` readable by its owner only (a database holds the site's evidence and users)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    return path


def _postgres_dump(url: str, dest: Path) -> tuple[Path, Head]:
    with _connect(url) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]  # type: ignore[index]
        row = conn.execute(HEAD_QUERY).fetchone()
        # The snapshot lives as long as this transaction: pg_dump runs inside it.
        _run_tool(["pg_dump", "--format=plain", "--no-owner", "--no-privileges", f"--snapshot={snapshot}",
                   "--file", str(_private_file(dest))], url)  # fmt: skip
        conn.rollback()
    return dest, (int(row[0]), str(row[1])) if row else None


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq URI without the password, and the environment that carries it (not on a command line)."""
    parsed: URL = make_url(url)
    env = {"PGPASSWORD": parsed.password} if parsed.password else {}
    plain = parsed.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return plain, env


def _connect(url: str, autocommit: bool = False) -> psycopg.Connection[tuple[object, ...]]:
    dsn, env = _libpq(url)
    return psycopg.connect(dsn, autocommit=autocommit, password=env.get("PGPASSWORD"))


def _admin(url: str, statement: str) -> None:
    try:
        with _connect(url, autocommit=True) as conn:
            conn.execute(statement)  # type: ignore[arg-type]
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatabaseCopyError(f"cannot make a scratch database to check the backup in: {first}") from exc


def _run_tool(argv: list[str], url: str, stdin: str | None = None) -> None:
    dsn, env = _libpq(url)
    if shutil.which(argv[0]) is None:
        raise DatabaseCopyError(f"{argv[0]} is not installed (Debian package postgresql-client)")
    done = subprocess.run(
        [argv[0], "--dbname", dsn, *argv[1:]], input=stdin, capture_output=True, text=True,
        env={**os.environ, **env}, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        raise DatabaseCopyError(f"{argv[0]} failed: {lines[0] if lines else f'exit {done.returncode}'}")
