"""Claiming queued jobs: no more than a bench allows, no more than the site allows (counting the
site's other benches, whoever drives them, and no other site's), and the claim made in the
attachment's own transaction keeps the attachment when it fails."""

from __future__ import annotations

import threading
import time

from harness.domain import receive
from sqlalchemy import update
from sqlmodel import Session, col, select

from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.line import jobs, leases
from factory.line.bench_config import simulated_config
from factory.line.controller import Controller
from factory.line.dispatcher import JobDispatcher
from factory.line.job_log import JobLogBuffer
from factory.line.models import Bench, Job, JobLog, JobStatus, Slot
from factory.line.slots import Attachment, attach

SITE = "test-site"  # the ctx fixture's site


def _line(ctx: AppContext, *, per_bench: int, site_limit: int) -> Controller:
    """Two benches of three slots registered to one agent (started and stopped: no loops run)."""
    config = simulated_config("2x3", agent="claim-agent", max_jobs_per_bench=per_bench, site_max_jobs=site_limit)
    controller = Controller(ctx, config)
    controller.start()
    controller.stop(drain_seconds=0)
    return controller


def _queue(s: Session, slot: Slot, serial: str) -> Job:
    attach(s, slot, Attachment(serial, "/dev/null", 1, time.time()))
    job, _ = jobs.create_job(s, slot, provision_name="p", detected_epoch=None)
    assert job.status == JobStatus.QUEUED, job.reason
    return job


def _queue_everywhere(ctx: AppContext) -> dict[int, list[int]]:
    """A received laptop in every slot, each with its queued job: bench id -> job ids."""
    with session_scope(ctx.engine) as s:
        slots = s.exec(select(Slot).order_by(col(Slot.bench_id), col(Slot.position))).all()
    for n, _ in enumerate(slots):
        receive(ctx, f"CL-{n}")
    queued: dict[int, list[int]] = {}
    with session_scope(ctx.engine) as s:
        for n, slot in enumerate(s.exec(select(Slot).order_by(col(Slot.bench_id), col(Slot.position))).all()):
            queued.setdefault(slot.bench_id, []).append(_queue(s, slot, f"CL-{n}").id or 0)
    return queued


def _claim(ctx: AppContext, bench_ids: list[int], *, agent: str, site_limit: int, limit: int = 10) -> list[int]:
    with session_scope(ctx.engine) as s:
        return leases.claim_jobs(
            s, agent=agent, run_id=f"run-{agent}", bench_ids=bench_ids, site=SITE, site_limit=site_limit,
            limit=limit, lease_seconds=30,
        )  # fmt: skip


def _statuses(ctx: AppContext, job_ids: list[int]) -> list[str]:
    with session_scope(ctx.engine) as s:
        rows = dict(s.exec(select(Job.id, Job.status).where(col(Job.id).in_(job_ids))).all())  # type: ignore[call-overload]
    return [JobStatus(rows[j]).value for j in job_ids]


def test_a_claim_takes_no_more_than_its_bench_allows(ctx: AppContext) -> None:
    _line(ctx, per_bench=2, site_limit=64)
    queued = _queue_everywhere(ctx)
    first, second = sorted(queued)
    claimed = _claim(ctx, [first], agent="claim-agent", site_limit=64)
    assert claimed == queued[first][:2]  # the oldest two; the third waits for a free place
    assert _statuses(ctx, queued[first]) == ["running", "running", "queued"]
    assert _claim(ctx, [first], agent="claim-agent", site_limit=64) == []  # still full
    assert _claim(ctx, [first, second], agent="claim-agent", site_limit=64) == queued[second][:2]


def test_the_site_limit_counts_the_sites_other_benches_and_no_other_site(ctx: AppContext) -> None:
    _line(ctx, per_bench=3, site_limit=3)
    queued = _queue_everywhere(ctx)
    ours, theirs = sorted(queued)
    assert len(_claim(ctx, [theirs], agent="other-agent", site_limit=3, limit=2)) == 2  # another agent's
    assert _claim(ctx, [ours], agent="claim-agent", site_limit=3) == queued[ours][:1]  # 2 + 1 = the limit
    with session_scope(ctx.engine) as s:
        s.execute(update(Bench).where(col(Bench.id) == theirs).values(site="elsewhere"))
    # The other bench is another site's now: its two running jobs no longer count against ours.
    assert _claim(ctx, [ours], agent="claim-agent", site_limit=3) == queued[ours][1:3]


def _dispatcher(controller: Controller, bench_ids: list[int]) -> JobDispatcher:
    """A dispatcher that is not stopping (the controller's own stopped with it)."""
    unset = threading.Event
    dispatcher = JobDispatcher(
        controller.config, controller.dispatcher.runner_ctx, site=SITE, wake=unset(), stopping=unset(), lost=unset()
    )
    dispatcher.take(bench_ids)
    return dispatcher


def _messages(ctx: AppContext, job_id: int) -> list[str]:
    with session_scope(ctx.engine) as s:
        return list(s.exec(select(JobLog.message).where(JobLog.job_id == job_id).order_by(col(JobLog.id))).all())


def _attach_and_claim_here(ctx: AppContext, serial: str, *, claim_fails: bool = False) -> tuple[list[int], Job]:
    """Queue ``serial``'s job in the first slot and claim it in the attachment's transaction, after
    an attachment log line; ``claim_fails``: the claim does its work, then raises. Returns what
    ``claim_here`` returned and the job as it was queued."""
    controller = _line(ctx, per_bench=3, site_limit=64)
    receive(ctx, serial)
    with session_scope(ctx.engine) as s:
        slot = s.exec(select(Slot).order_by(col(Slot.id))).first()
        assert slot is not None
        dispatcher = _dispatcher(controller, [slot.bench_id])
        if claim_fails:
            claim = dispatcher.claim

            def claims_then_fails(session: Session, lines: JobLogBuffer) -> list[int]:
                claim(session, lines)  # the job is running and its line buffered...
                raise RuntimeError("lost the claim")  # ...then the claim fails: neither may stay

            dispatcher.claim = claims_then_fails  # type: ignore[method-assign]
        logs = JobLogBuffer()
        job = _queue(s, slot, serial)
        logs.add(job.id or 0, "the attachment's line")
        queued = Job.model_validate(job)  # as queued: a failed claim's rollback expires the row
        claimed = dispatcher.claim_here(s, logs)
        logs.flush(s)
    return claimed, queued


def test_a_claim_at_attachment_writes_its_lines_with_the_attachments(ctx: AppContext) -> None:
    claimed, job = _attach_and_claim_here(ctx, "CL-A")
    assert claimed == [job.id]
    assert _statuses(ctx, [job.id or 0]) == ["running"]
    assert _messages(ctx, job.id or 0)[-2:] == ["the attachment's line", "started by claim-agent"]


def test_a_failed_claim_at_attachment_keeps_the_attachment_and_drops_only_the_claim(ctx: AppContext) -> None:
    claimed, job = _attach_and_claim_here(ctx, "CL-B", claim_fails=True)
    assert claimed == []
    assert _statuses(ctx, [job.id or 0]) == ["queued"]  # left to the dispatcher's loop
    messages = _messages(ctx, job.id or 0)
    assert messages[-1] == "the attachment's line" and not any(m.startswith("started by") for m in messages)
    with session_scope(ctx.engine) as s:
        stored = s.get(Slot, job.slot_id)
        assert stored is not None and stored.attached_serial == "CL-B" and stored.device_id == job.device_id
