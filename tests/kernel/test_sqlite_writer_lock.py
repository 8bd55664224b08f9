"""SQLite writers in one process queue on a process lock before BEGIN IMMEDIATE (factory/kernel/db/engine.py).

The lock must be shared by every engine on the same file, be given back however a transaction
ends (commit, rollback, error), and never be taken by read-only units.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from factory.kernel.db.engine import make_engine, read_scope, session_scope


def _engines(tmp_path: Path) -> tuple[object, object]:
    url = f"sqlite:///{tmp_path / 'lock.db'}"
    first, second = make_engine(url), make_engine(url)
    with session_scope(first) as s:
        s.execute(text("CREATE TABLE t (x INTEGER)"))
    return first, second


def test_a_writer_on_another_engine_waits_for_the_first_to_commit(tmp_path: Path) -> None:
    first, second = _engines(tmp_path)
    holding, release, order = threading.Event(), threading.Event(), []

    def writer_one() -> None:
        with session_scope(first) as s:
            s.execute(text("INSERT INTO t VALUES (1)"))
            holding.set()
            release.wait(10)
            order.append("one commits")

    def writer_two() -> None:
        holding.wait(10)
        with session_scope(second) as s:
            s.execute(text("INSERT INTO t VALUES (2)"))  # the first statement takes the write lock
            order.append("two writes")

    threads = [threading.Thread(target=writer_one), threading.Thread(target=writer_two)]
    for t in threads:
        t.start()
    holding.wait(10)
    with read_scope(second) as conn:  # a reader never waits for the writer
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 0
    release.set()
    for t in threads:
        t.join(10)
    assert order == ["one commits", "two writes"]
    with read_scope(first) as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 2


def test_the_lock_is_given_back_after_an_error_and_a_rollback(tmp_path: Path) -> None:
    first, second = _engines(tmp_path)
    with pytest.raises(Exception, match="no such table"):
        with session_scope(first) as s:
            s.execute(text("INSERT INTO missing VALUES (1)"))
    with pytest.raises(RuntimeError):
        with session_scope(first) as s:
            s.execute(text("INSERT INTO t VALUES (1)"))
            raise RuntimeError("caller gave up")
    done = threading.Event()

    def writer() -> None:
        with session_scope(second) as s:
            s.execute(text("INSERT INTO t VALUES (3)"))
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    thread.join(20)
    assert done.is_set(), "the write lock leaked"
    with read_scope(first) as conn:
        assert conn.execute(text("SELECT x FROM t")).scalars().all() == [3]
