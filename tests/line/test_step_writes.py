"""A step's transaction writes what it changed on the job, and its log lines, with its custody
entry (on PostgreSQL in the entry's one statement, not in an UPDATE and an INSERT of their own),
all or nothing with it; the device row it locked is not selected a second time (on PostgreSQL it
is locked by the ownership check's statement, with the job)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from harness.domain import receive
from sqlalchemy import Engine, event, update
from sqlmodel import col, select

from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.kernel.errors import InvalidTransition
from factory.kernel.lifecycle.states import Event
from factory.kernel.models.device import Device
from factory.line import jobs, leases
from factory.line.bench_config import simulated_config
from factory.line.controller import Controller
from factory.line.errors import LostOwnership
from factory.line.job_runner import JobRunner
from factory.line.models import Job, JobLog, Slot
from factory.line.slots import Attachment, attach
from imaging.engine import erase


def _runner_with_device(ctx: AppContext) -> tuple[JobRunner, int]:
    """A runner holding a claimed job whose device is a received laptop."""
    controller = Controller(ctx, simulated_config("1x1", agent="sw-agent"), erase_fn=erase)
    controller.start()
    controller.stop(drain_seconds=0)
    device_id = receive(ctx, "L-1")
    with session_scope(ctx.engine) as s:
        slot = s.exec(select(Slot)).one()
        attach(s, slot, Attachment("L-1", "/dev/null", 1, time.time()))
        job, _ = jobs.create_job(s, slot, provision_name="p", detected_epoch=None)
        job.device_id = device_id
        s.add(job)
        s.flush()
        leases.claim_jobs(
            s, agent="sw-agent", run_id=controller.run_id, bench_ids=[slot.bench_id], site="test-site",
            site_limit=8, limit=1, lease_seconds=5,
        )  # fmt: skip
        job_id = job.id or 0
    return JobRunner(controller.dispatcher.runner_ctx, job_id), job_id


@contextmanager
def _statements(ctx: AppContext) -> Iterator[list[str]]:
    seen: list[str] = []

    def note(conn, cursor, statement, *args) -> None:
        seen.append(" ".join(statement.split()))

    # On the class: the runner's engine is the controller's, not the test's.
    event.listen(Engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", note)


def _log_lines(ctx: AppContext, job_id: int) -> list[str]:
    with session_scope(ctx.engine) as s:
        return list(s.exec(select(JobLog.message).where(JobLog.job_id == job_id)).all())


def test_the_job_changes_and_log_lines_are_written_with_the_entry(ctx: AppContext) -> None:
    runner, job_id = _runner_with_device(ctx)
    before = _log_lines(ctx, job_id)
    with _statements(ctx) as seen, runner.scope(starting="wipe") as (s, job):
        runner.begin(s, job, "wipe")
        device = jobs.device_of(s, job)
        job.work_seconds = 4.5  # changed after the ownership check: written with the entry
        runner.logs.add(job_id, "about to open the round")
        runner.transition(s, job, Event.START_SANITISE)
        assert device.state == "sanitising"  # the loaded row caught up without a reload
    with session_scope(ctx.engine) as s:
        stored = s.get(Job, job_id)
        assert stored is not None and (stored.current_step, stored.work_seconds) == ("wipe", 4.5)
        assert s.get(Device, device.id).state == "sanitising"  # type: ignore[union-attr]
    assert _log_lines(ctx, job_id)[len(before) :] == ["step 'wipe' started", "about to open the round"]
    device_reads = [sql for sql in seen if "FROM device" in sql]
    if ctx.engine.dialect.name == "postgresql":
        # The ownership check locks the job and its device in one statement; nothing selects it again.
        hold, *rest = seen
        assert hold.startswith("WITH held AS (UPDATE job ") and "FROM device" in hold and "FOR NO KEY UPDATE" in hold
        assert device_reads == [hold]
        standalone = [sql for sql in rest if sql.startswith(("UPDATE job ", "INSERT INTO job_log", "UPDATE device"))]
        assert standalone == []
        write = next(sql for sql in rest if sql.startswith("WITH "))
        assert all(part in write for part in ("UPDATE job ", "INSERT INTO job_log ", "UPDATE device "))
    else:
        assert len(device_reads) == 1  # locked once, not again by the transition


def test_a_refused_transition_writes_none_of_it(ctx: AppContext) -> None:
    runner, job_id = _runner_with_device(ctx)
    before = _log_lines(ctx, job_id)
    with pytest.raises(InvalidTransition), runner.scope(starting="wipe") as (s, job):
        runner.begin(s, job, "wipe")
        job.work_seconds = 9.0
        runner.transition(s, job, Event.SANITISED)  # a received device has no erase round to close
    with session_scope(ctx.engine) as s:
        stored = s.get(Job, job_id)
        assert stored is not None and stored.work_seconds != 9.0 and stored.current_step != "wipe"
        assert s.get(Device, stored.device_id).state == "received"  # type: ignore[arg-type, union-attr]
    assert _log_lines(ctx, job_id) == before


def test_the_ownership_check_holds_a_job_without_a_device_and_refuses_one_not_ours(ctx: AppContext) -> None:
    runner, job_id = _runner_with_device(ctx)
    with session_scope(ctx.engine) as s:
        s.execute(update(Job).where(col(Job.id) == job_id).values(device_id=None))  # as an unknown device's job
    with runner.scope() as (s, job):
        assert job.id == job_id and job.device_id is None
    with session_scope(ctx.engine) as s:
        s.execute(update(Job).where(col(Job.id) == job_id).values(owner_run="another-run"))
    with pytest.raises(LostOwnership), runner.scope():
        pass
