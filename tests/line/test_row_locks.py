"""Row locks that cannot deadlock with PostgreSQL's foreign-key checks.

A transaction that updates a row twice (the step's ownership check renews the job's lease, then
the step finishes the job) has the second update check the row's foreign keys, taking FOR KEY
SHARE on the slot, the bench and the device it names. The controller handling an event for the
same slot locks the slot, then the slot's job. Had the slot been locked FOR UPDATE, the two would
wait for each other (seen in CI: the tablet line's last step against a tablet's restart event, one
of them failed with "deadlock detected"). The line locks rows FOR NO KEY UPDATE, which excludes the
line's other lockers as before but not those key checks: no row's key is ever changed by them.
"""

from __future__ import annotations

import threading
import time

import pytest
from harness.line_jobs import claimed_job, stopped_controller
from harness.waiting import wait_until
from sqlalchemy import text
from sqlmodel import select

from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.line import jobs
from factory.line.models import Job, JobStatus, Slot
from factory.line.slots import lock_slot


@pytest.fixture
def pg_ctx(ctx: AppContext) -> AppContext:
    if ctx.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no row locks: BEGIN IMMEDIATE serialises whole transactions")
    return ctx


def _running_job(ctx: AppContext) -> tuple[str, int, str]:
    """A job claimed by a (stopped) controller's run: its run id, the job id, its slot's code."""
    controller = stopped_controller(ctx, "lock-agent")
    job_id = claimed_job(ctx, "lock-agent", controller.run_id, lease_seconds=30)
    with session_scope(ctx.engine) as s:
        return controller.run_id, job_id, s.exec(select(Slot.code)).one()


def _waiting_for_a_row_lock(ctx: AppContext) -> bool:
    with ctx.engine.connect() as conn:
        waiting = conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"))
        return bool(waiting.scalar())


def test_a_step_finishing_its_job_and_an_event_on_its_slot_do_not_deadlock(pg_ctx: AppContext) -> None:
    run_id, job_id, code = _running_job(pg_ctx)
    seen: list[Job | None] = []
    errors: list[BaseException] = []

    def slot_event() -> None:  # the controller: the slot, then the slot's job
        try:
            with session_scope(pg_ctx.engine) as s:
                lock_slot(s, code)
                seen.append(jobs.active_job_for_slot(s, _slot_id(s, code)))
        except BaseException as exc:  # reported by the test's own thread
            errors.append(exc)

    event = threading.Thread(target=slot_event)
    with session_scope(pg_ctx.engine) as s:  # the runner's last step
        job = jobs.hold_for_step(s, job_id, run_id, time.time() + 30)
        event.start()
        wait_until(lambda: _waiting_for_a_row_lock(pg_ctx), 10, 0.02, "the slot event to wait for the job")
        jobs.finish(s, job, JobStatus.SUCCEEDED)
        s.flush()  # the job's second update in this transaction: its foreign keys are checked
    event.join(timeout=30)
    assert errors == []
    assert seen == [None]  # it saw the job finished, once the step had committed


def _slot_id(session, code: str) -> int:
    return session.exec(select(Slot.id).where(Slot.code == code)).one()
