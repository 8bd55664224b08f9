"""Bench line rows for page tests: a bench slot whose device was pulled out mid-job."""

from __future__ import annotations

from factory.kernel.clock import utc_now
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.line.models import Bench, Job, JobStatus, Slot


def pulled_job(ctx: AppContext, serial: str, device_id: int) -> int:
    """A bench slot whose device was pulled mid-erase: the job failed, the slot now holds nothing."""
    now = utc_now()
    with session_scope(ctx.engine) as s:
        bench = Bench(name="bench-9", created_at=now)
        s.add(bench)
        s.flush()
        slot = Slot(code="bench-9/slot-1", bench_id=bench.id or 0, position=1, updated_at=now, attachment_id=None)
        s.add(slot)
        s.flush()
        job = Job(slot_id=slot.id or 0, bench_id=bench.id or 0, attachment_id="gone-1", identification="returned",
                  pipeline="returned", created_at=now, updated_at=now, device_id=device_id, device_serial=serial,
                  status=JobStatus.FAILED, reason="device removed from slot during 'sanitise'",
                  action="re-insert it to restart from the beginning, or send it for destruction")  # fmt: skip
        s.add(job)
        s.flush()
        return job.id or 0
