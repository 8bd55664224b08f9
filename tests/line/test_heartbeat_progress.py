"""The heartbeat copies erase progress to the database (for boards in other processes) in its
one transaction, and never lets a late copy overwrite the step the job has moved on to. It never
waits for a job row its runner holds (on PostgreSQL): the runner's step renews that job's lease."""

from __future__ import annotations

import threading
import time

import pytest
from harness.line_jobs import claimed_job, stopped_controller
from sqlmodel import select

from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.line import jobs, leases
from factory.line.controller import Controller
from factory.line.job_runner import JobRunner
from factory.line.models import Job

AGENT = "hb-agent"


def _running_job(ctx: AppContext) -> tuple[str, int]:
    controller = _stopped_controller(ctx)
    return controller.run_id, _claimed_job(ctx, controller.run_id)


def _stopped_controller(ctx: AppContext, layout: str = "1x1") -> Controller:
    return stopped_controller(ctx, AGENT, layout)


def _claimed_job(ctx: AppContext, run_id: str, position: int = 0) -> int:
    return claimed_job(ctx, AGENT, run_id, position)


def _set_step(ctx: AppContext, job_id: int, step: str) -> None:
    with session_scope(ctx.engine) as s:
        job = s.get(Job, job_id)
        assert job is not None
        job.current_step = step
        s.add(job)


def _beat(ctx: AppContext, run_id: str, progress: dict[int, tuple[str, str, float]]) -> Job:
    with session_scope(ctx.engine) as s:
        leases.renew_leases(s, agent=AGENT, run_id=run_id, lease_seconds=30, progress=progress)
    with session_scope(ctx.engine) as s:
        job = s.exec(select(Job)).one()
        return job


def test_progress_lands_while_the_job_is_in_that_step_and_never_after(ctx: AppContext) -> None:
    run_id, job_id = _running_job(ctx)
    _set_step(ctx, job_id, "sanitise")
    job = _beat(ctx, run_id, {job_id: ("sanitise", "sanitise (write)", 0.25)})
    assert (job.current_step, job.progress) == ("sanitise (write)", 0.25)
    assert job.lease_expires_at is not None and job.lease_expires_at > time.time() + 20
    job = _beat(ctx, run_id, {job_id: ("sanitise", "sanitise (verify)", 0.4)})
    assert (job.current_step, job.progress) == ("sanitise (verify)", 0.4)

    _set_step(ctx, job_id, "provision")  # the job moved on: a late sanitise copy must not land
    job = _beat(ctx, run_id, {job_id: ("sanitise", "sanitise (verify)", 0.5)})
    assert (job.current_step, job.progress) == ("provision", 0.4)


def test_step_names_are_matched_literally(ctx: AppContext) -> None:
    run_id, job_id = _running_job(ctx)
    _set_step(ctx, job_id, "wipe-x1 (write)")
    job = _beat(ctx, run_id, {job_id: ("wipe_x%", "wipe_x% (verify)", 0.9)})  # LIKE wildcards in the name
    assert job.current_step == "wipe-x1 (write)"


def _renew(ctx: AppContext, run_id: str) -> None:
    with session_scope(ctx.engine) as s:
        leases.renew_leases(s, agent=AGENT, run_id=run_id, lease_seconds=30)


def _job(ctx: AppContext, job_id: int) -> Job:
    with session_scope(ctx.engine) as s:
        job = s.get(Job, job_id)
        assert job is not None
        return job


def test_a_beat_renews_the_other_jobs_and_passes_over_one_its_runner_holds(ctx: AppContext) -> None:
    if ctx.engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers: a beat and a step never run at once")
    controller = _stopped_controller(ctx, "1x2")
    held, free = (_claimed_job(ctx, controller.run_id, position) for position in (0, 1))  # leases of 5 s
    before = _job(ctx, held).lease_expires_at
    beat = threading.Thread(target=_renew, args=(ctx, controller.run_id))
    with session_scope(ctx.engine) as step:  # a step's transaction: the job row locked, as a runner holds it
        jobs.hold_for_step(step, held, controller.run_id, before or 0.0)  # renewed to what it was
        beat.start()
        beat.join(timeout=60)
        assert not beat.is_alive(), "the heartbeat waited for the runner's row lock"
        renewed = _job(ctx, free).lease_expires_at
    assert renewed is not None and renewed > time.time() + 20  # the beat committed the free job's lease
    assert _job(ctx, held).lease_expires_at == before  # passed over, not waited on
    _renew(ctx, controller.run_id)
    lease = _job(ctx, held).lease_expires_at
    assert lease is not None and lease > time.time() + 20  # the next beat renews it


def test_each_step_transaction_renews_its_job_lease(ctx: AppContext) -> None:
    controller = _stopped_controller(ctx)
    job_id = _claimed_job(ctx, controller.run_id)
    with session_scope(ctx.engine) as s:
        job = s.get(Job, job_id)
        assert job is not None
        job.lease_expires_at = time.time() - 1  # no heartbeat has renewed it
        s.add(job)
    runner = JobRunner(controller.dispatcher.runner_ctx, job_id)
    with runner.scope():
        pass
    lease = _job(ctx, job_id).lease_expires_at
    assert lease is not None and lease > time.time() + controller.config.lease_seconds / 2
