"""The provisioner's job log is written in batches: every line lands, in order, with the time it
was produced, in far fewer transactions than lines."""

from __future__ import annotations

import time

from harness.waiting import wait_until
from sqlalchemy import event
from sqlmodel import col, select

from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.line import jobs
from factory.line.bench_config import simulated_config
from factory.line.controller import Controller
from factory.line.models import JobLog, Slot
from factory.line.slots import Attachment, attach
from factory.provisioning.line_provisioner import JobLogSink
from imaging.engine import erase


def _job(ctx: AppContext) -> int:
    controller = Controller(ctx, simulated_config("1x1", agent="sink-agent"), erase_fn=erase)
    controller.start()
    controller.stop(drain_seconds=0)
    with session_scope(ctx.engine) as s:
        slot = s.exec(select(Slot)).one()
        attach(s, slot, Attachment("UNK-1", "/dev/null", 1, time.time()))
        job, _ = jobs.create_job(s, slot, provision_name="p", detected_epoch=None)
        return job.id or 0


def test_lines_are_batched_in_order_with_their_own_times(ctx: AppContext) -> None:
    job_id = _job(ctx)
    commits: list[int] = []
    event.listen(ctx.engine, "commit", lambda _conn: commits.append(1))
    sink = JobLogSink(ctx.engine, job_id)
    for n in range(40):
        sink.log(f"line {n}")
    sink.task_event("host-1", "install packages", "failed", changed=False)
    sink.flush()
    with session_scope(ctx.engine) as s:
        rows = s.exec(select(JobLog).where(JobLog.job_id == job_id).order_by(col(JobLog.id))).all()
    ours = [r for r in rows if r.message.startswith(("line ", "host-1"))]
    assert [r.message for r in ours] == [f"line {n}" for n in range(40)] + ["host-1: install packages: failed"]
    assert ours[-1].level == "error"
    assert [r.at for r in ours] == sorted(r.at for r in ours)
    assert len(commits) < 10, f"{len(commits)} transactions for 41 lines"


def test_a_line_is_written_without_waiting_for_the_end(ctx: AppContext) -> None:
    job_id = _job(ctx)
    sink = JobLogSink(ctx.engine, job_id)
    sink.log("still running")

    def written() -> bool:
        with session_scope(ctx.engine) as s:
            return s.exec(select(JobLog).where(JobLog.message == "still running")).first() is not None

    found = wait_until(written, 30, message="the buffered line to be written")
    assert found, "a buffered line was never written while the run went on"


def test_a_task_that_restarts_the_device_opens_its_slots_reboot_window(ctx: AppContext) -> None:
    job_id = _job(ctx)
    opened: list[str] = []
    sink = JobLogSink(ctx.engine, job_id, on_reboot=lambda: opened.append("reboot"))
    sink.task_event("host-1", "base : Write the enrolment configuration", "started", changed=False)
    assert opened == []
    sink.task_event("host-1", "base : Restart to apply the new hostname", "started", changed=False)
    assert opened == ["reboot"]
    sink.flush()
