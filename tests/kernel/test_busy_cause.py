"""A busy database error names its cause in a failed job's reason: a transaction PostgreSQL rolled
back to break a deadlock is not a lost connection (a technician would look for the wrong fault)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from factory.kernel.db.errors import busy_cause, is_busy


@pytest.fixture
def pg_engine(ctx):
    if ctx.engine.dialect.name != "postgresql":
        pytest.skip("deadlocks and backends are PostgreSQL's")
    with ctx.engine.begin() as conn:
        conn.execute(text("CREATE TABLE busy_probe (id integer PRIMARY KEY)"))
        conn.execute(text("INSERT INTO busy_probe VALUES (1), (2)"))
    return ctx.engine


def _lock_in_order(engine, first: int, second: int, ready: threading.Barrier, errors: list[BaseException]) -> None:
    try:
        with engine.begin() as conn:
            conn.execute(text("SELECT id FROM busy_probe WHERE id = :i FOR UPDATE"), {"i": first})
            ready.wait(timeout=10)
            conn.execute(text("SELECT id FROM busy_probe WHERE id = :i FOR UPDATE"), {"i": second})
    except OperationalError as exc:
        errors.append(exc)


def test_a_deadlock_victim_is_named_a_deadlock(pg_engine) -> None:
    errors: list[BaseException] = []
    ready = threading.Barrier(2)
    threads = [
        threading.Thread(target=_lock_in_order, args=(pg_engine, a, b, ready, errors)) for a, b in ((1, 2), (2, 1))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    [victim] = errors  # PostgreSQL rolls back exactly one of the two
    assert is_busy(victim)
    assert busy_cause(victim) == "database deadlock (the transaction was rolled back)"


def test_a_terminated_connection_is_named_a_lost_connection(pg_engine) -> None:
    with pg_engine.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        with pg_engine.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        with pytest.raises(OperationalError) as lost:
            conn.execute(text("SELECT 1"))
    assert is_busy(lost.value)
    assert busy_cause(lost.value) == "database connection lost"
