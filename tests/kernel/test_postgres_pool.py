"""PostgreSQL pool without pre-ping: a connection the server closed while it sat idle in the pool
is replaced at checkout, with no query sent to find out."""

from __future__ import annotations

import select

import psycopg
import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import OperationalError

from factory.kernel.db.engine import make_engine


def _pid_then_terminate(engine: Engine, admin_dsn: str) -> int:
    """Use one pooled connection, return it to the pool, have the server end it; wait for the goodbye."""
    with engine.connect() as conn:
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        sock = conn.connection.driver_connection.pgconn.socket  # type: ignore[union-attr]
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    select.select([sock], [], [], 30)
    return int(pid or 0)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_connection_closed_by_the_server_while_idle_is_replaced(database_url, pg_admin_dsn) -> None:
    engine = make_engine(database_url)
    try:
        first = _pid_then_terminate(engine, pg_admin_dsn)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() != first
    finally:
        engine.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_without_the_check_the_next_user_would_fail(database_url, pg_admin_dsn) -> None:
    """The contrast that makes the test above mean something: a plain pool hands the dead one out."""
    engine = create_engine(database_url)
    try:
        _pid_then_terminate(engine, pg_admin_dsn)
        with pytest.raises(OperationalError), engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    finally:
        engine.dispose()
