"""The heartbeat copies erase progress to the database (for boards in other processes) in its
one transaction, and never lets a late copy overwrite the step the job has moved on to."""

from __future__ import annotations

import time

from sqlmodel import select

from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.line import jobs, leases
from factory.line.bench_config import simulated_config
from factory.line.controller import Controller
from factory.line.models import Job, Slot
from factory.line.slots import Attachment, attach
from imaging.engine import erase


def _running_job(ctx: AppContext) -> tuple[str, int]:
    controller = Controller(ctx, simulated_config("1x1", agent="hb-agent"), erase_fn=erase)
    controller.start()
    controller.stop(drain_seconds=0)
    run_id = controller.run_id
    with session_scope(ctx.engine) as s:
        me = s.exec(select(Slot)).one()
        attach(s, me, Attachment("UNK-1", "/dev/null", 1, time.time()))
        jobs.create_job(s, me, provision_name="p", detected_epoch=None)
        [job_id] = leases.claim_jobs(
            s, agent="hb-agent", run_id=run_id, bench_ids=[me.bench_id], site="test-site", site_limit=8, limit=1,
            lease_seconds=5,
        )  # fmt: skip
    return run_id, job_id


def _set_step(ctx: AppContext, job_id: int, step: str) -> None:
    with session_scope(ctx.engine) as s:
        job = s.get(Job, job_id)
        assert job is not None
        job.current_step = step
        s.add(job)


def _beat(ctx: AppContext, run_id: str, progress: dict[int, tuple[str, str, float]]) -> Job:
    with session_scope(ctx.engine) as s:
        leases.renew_leases(s, agent="hb-agent", run_id=run_id, lease_seconds=30, progress=progress)
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
