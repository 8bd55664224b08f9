"""On PostgreSQL a transaction takes its log's advisory lock once, however many entries it appends
(a sanitise's end with the next step's start appends two): a second lock would be a round trip
under the lock that every other writer waits for. A lock first taken in a savepoint is taken
again after the savepoint, never assumed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from harness.domain import receive
from sqlalchemy import event

from factory.kernel.db.engine import session_scope
from factory.kernel.ledger.verify import verify_ledger
from factory.kernel.lifecycle.states import Event
from factory.kernel.lifecycle.transition import TransitionRequest, change_state


@contextmanager
def _locks(ctx) -> Iterator[list[str]]:
    seen: list[str] = []

    def note(conn, cursor, statement, *args) -> None:
        if "pg_advisory_xact_lock" in statement:
            seen.append(statement)

    event.listen(ctx.engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(ctx.engine, "before_cursor_execute", note)


def _start(s, device_id: int) -> None:
    change_state(s, [TransitionRequest(device_id, Event.START_SANITISE)], actor="tech.one")


@pytest.fixture
def pg_ctx(ctx):
    if ctx.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's writer lock covers the log: there is no lock of its own to take")
    return ctx


def test_two_appends_in_one_transaction_lock_the_log_once(pg_ctx) -> None:
    first, second = receive(pg_ctx, "L-1"), receive(pg_ctx, "L-2")
    with _locks(pg_ctx) as seen, session_scope(pg_ctx.engine) as s:
        _start(s, first)
        _start(s, second)
    assert len(seen) == 1
    assert verify_ledger(pg_ctx.engine).ok


def test_each_transaction_takes_the_lock_again(pg_ctx) -> None:
    first, second = receive(pg_ctx, "L-1"), receive(pg_ctx, "L-2")
    with _locks(pg_ctx) as seen:
        with session_scope(pg_ctx.engine) as s:
            _start(s, first)
        with session_scope(pg_ctx.engine) as s:
            _start(s, second)
    assert len(seen) == 2


def test_a_lock_taken_in_a_rolled_back_savepoint_is_taken_again(pg_ctx) -> None:
    first, second = receive(pg_ctx, "L-1"), receive(pg_ctx, "L-2")
    with _locks(pg_ctx) as seen, session_scope(pg_ctx.engine) as s:
        nested = s.begin_nested()
        _start(s, first)
        nested.rollback()
        _start(s, second)  # the savepoint's lock went with it: this append locks the log itself
    assert len(seen) == 2
    assert verify_ledger(pg_ctx.engine).ok
