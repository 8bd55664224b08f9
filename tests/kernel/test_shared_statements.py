"""Statements built once and run by many threads: none of them is handed out before it is built and
compiled, so threads starting at once on a new statement all run the same, right SQL.

Before ``kernel/db/shared_statements``, 8 threads starting at once on the job hold with its device
CTE failed about 1 run in 100 on PostgreSQL (NoSuchColumnError 'dev.id') and about 1 in 200 ran a
cartesian product with the whole device table instead."""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import event
from sqlmodel import Session

from factory.kernel.db.shared_statements import built_once
from factory.line import job_hold, slots

THREADS, ROUNDS = 8, 200  # the unguarded builder ran wrong SQL within 200 rounds; 40 were not enough


def _statement_for(dialect: str) -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
    """The raw builder, its key and parameters: on PostgreSQL the job hold with its device (the
    statement that failed), on SQLite the slot lock (PostgreSQL's CTE is not SQLite's)."""
    if dialect == "postgresql":
        params = {"hold_id": 999_999, "hold_run": "none", "hold_lease": 0.0, "hold_mark_current_step": "x"}
        return job_hold._held_with_device.__wrapped__, (("current_step",),), params  # type: ignore[attr-defined]
    return slots._slot_by_code.__wrapped__, (False,), {"slot_code": "NO-SUCH-SLOT"}  # type: ignore[attr-defined]


def test_threads_starting_at_once_on_a_new_statement_all_run_the_same_sql(ctx) -> None:
    build, key, params = _statement_for(ctx.engine.dialect.name)
    executed: list[str] = []
    failures: list[BaseException] = []
    event.listen(ctx.engine, "before_cursor_execute", lambda conn, cur, sql, *a: executed.append(sql))

    def run(statement_for: Any, start: threading.Barrier) -> None:
        with Session(ctx.engine) as session:
            start.wait()
            try:
                assert session.execute(statement_for(*key), params).all() == []
            except BaseException as exc:  # collected: the test fails with what each thread met
                failures.append(exc)
            finally:
                session.rollback()

    for _ in range(ROUNDS):
        statement_for = built_once(build)  # a statement no thread has built yet
        ctx.engine._compiled_cache.clear()  # and no compiled form of it
        start = threading.Barrier(THREADS)
        threads = [threading.Thread(target=run, args=(statement_for, start)) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not failures, failures[:3]
    ran = {sql for sql in executed if not sql.lstrip().upper().startswith(("BEGIN", "ROLLBACK", "SELECT PG_", "SET"))}
    assert len(ran) == 1, ran  # one text: no thread ran a half-built statement's FROM list
    assert len(executed) >= THREADS * ROUNDS


def test_a_statement_is_built_once_however_many_threads_ask_at_once() -> None:
    builds: list[tuple[Any, ...]] = []

    def slow_build(*key: Any) -> Any:
        builds.append(key)
        time.sleep(0.05)  # long enough for every other thread to ask meanwhile
        return slots._slot_by_code.__wrapped__(*key)  # type: ignore[attr-defined]

    statement_for = built_once(slow_build)
    start = threading.Barrier(THREADS)
    got: list[Any] = []

    def ask(postgres: bool) -> None:
        start.wait()
        got.append((postgres, statement_for(postgres)))

    threads = [threading.Thread(target=ask, args=(n % 2 == 0,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(builds) == [(False,), (True,)]
    for postgres in (False, True):
        assert len({id(statement) for flag, statement in got if flag is postgres}) == 1
