"""A job's run plan (its steps and whether its slot is a switch port) is handed by the transaction
that creates and claims the job to the runner it launches, which then does not read it; the
handed plan is what the runner would have read."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from harness.domain import receive
from sqlalchemy import Engine, event
from sqlmodel import col, select

from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.line import jobs, leases
from factory.line.bench_config import simulated_config
from factory.line.controller import Controller
from factory.line.job_log import JobLogBuffer
from factory.line.job_runner import JobRunner
from factory.line.models import Job, JobStatus, JobStep, Slot
from factory.line.pipeline_rules import Step
from factory.line.slots import Attachment


def _controller(ctx: AppContext) -> Controller:
    controller = Controller(ctx, simulated_config("1x2", agent="plan-agent"))
    controller.start()
    controller.stop(drain_seconds=0)
    return controller


def _attach_and_claim(
    ctx: AppContext, controller: Controller, serial: str, mac: str | None = None, slot_index: int = 0
) -> tuple[int, jobs.RunPlan]:
    """Attach ``serial`` to a slot and claim its job in that transaction, as the controller does;
    the slot's switch-port MAC set first if given. Returns (job id, its handed plan)."""
    with session_scope(ctx.engine) as s:
        slot = s.exec(select(Slot).order_by(col(Slot.position))).all()[slot_index]
        slot.attached_mac = mac
        logs = JobLogBuffer()
        _, job, plan = jobs.attach_and_queue(
            s, slot, Attachment(serial, "/dev/null", 1, time.time()), provision_name="p", logs=logs
        )
        assert job is not None and plan is not None and job.status == JobStatus.QUEUED, job and job.reason
        claimed = leases.claim_jobs(
            s, agent="plan-agent", run_id=controller.run_id, bench_ids=[slot.bench_id], site="test-site",
            site_limit=8, limit=1, lease_seconds=30,
        )  # fmt: skip
        assert claimed == [job.id]
        logs.flush(s)
        return job.id or 0, plan


@contextmanager
def _statements() -> Iterator[list[str]]:
    seen: list[str] = []

    def note(conn, cursor, statement, *args) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(Engine, "before_cursor_execute", note)  # the runner's engine is the controller's
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", note)


@pytest.mark.parametrize("mac", [None, "52:54:00:12:34:56"], ids=["dock slot", "switch-port slot"])
def test_the_handed_plan_is_the_one_the_runner_would_read(ctx: AppContext, mac: str | None) -> None:
    controller = _controller(ctx)
    receive(ctx, "RP-1")
    job_id, plan = _attach_and_claim(ctx, controller, "RP-1", mac)
    with session_scope(ctx.engine) as s:
        rows = s.exec(select(JobStep).where(JobStep.job_id == job_id).order_by(col(JobStep.position))).all()
    assert [(r.id, Step(r.kind), r.name) for r in rows] == list(plan.steps)
    assert plan.steps[0][1] == Step.SANITISE  # a returned laptop: erased first
    assert plan.on_switch_port is (mac is not None)
    assert jobs.read_plan(ctx.engine, job_id) == plan


def _run(controller: Controller, job_id: int, plan: jobs.RunPlan | None) -> list[str]:
    with _statements() as seen:
        JobRunner(controller.dispatcher.runner_ctx, job_id, plan).run()
    return [text for text in seen if "FROM job_step JOIN job" in text]


def test_a_runner_handed_its_plan_does_not_read_it_and_runs_the_same_steps(ctx: AppContext) -> None:
    controller = _controller(ctx)
    handed_id, handed = _attach_and_claim(ctx, controller, "RP-UNKNOWN-1")  # unknown: quarantined
    assert [kind for _, kind, _ in handed.steps] == [Step.QUARANTINE]
    assert _run(controller, handed_id, handed) == []
    read_id, _ = _attach_and_claim(ctx, controller, "RP-UNKNOWN-2", slot_index=1)
    assert len(_run(controller, read_id, None)) == 1  # not handed: read once
    with session_scope(ctx.engine) as s:
        for job_id in (handed_id, read_id):
            job = s.get(Job, job_id)
            assert job is not None and job.status == JobStatus.HELD and job.reason == "unknown device quarantined"
            steps = s.exec(select(JobStep.status).where(JobStep.job_id == job_id)).all()
            assert steps and all(status == "succeeded" for status in steps)
