"""Jobs this agent run owns that no runner of its own is running: settled as failed.

Normally every job claimed here has a runner until it ends. A lost database connection can break
that: a claim whose commit reached the database (and, with a synchronous standby, the standby)
while its acknowledgement was lost looks failed to us, so no runner starts; the event that made it
is retried and sees the device already attached. The heartbeat would renew such a job's lease for
ever, its slot blocked. The heartbeat therefore looks for them: a job seen without a runner on two
beats in a row (a claim just committed has its runner a moment later) is failed with the reason,
as reconciliation fails a dead agent's jobs; the device is failed only if this job put it in
progress, and the technician re-inserts it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from factory.kernel.db.engine import read_scope
from factory.line import jobs
from factory.line.job_log import JobLogBuffer, logged_scope
from factory.line.models import Job, JobStatus, Slot
from factory.line.slots import locked

log = logging.getLogger(__name__)

REASON = "its runner was lost (database connection lost while it started)"
ACTION = "re-insert the device to run it again"


class OrphanWatch:
    def __init__(self, engine: Engine, run_id: str, actor: str, running: Callable[[], list[int]]) -> None:
        self.engine, self.run_id, self.actor, self.running = engine, run_id, actor, running
        self.suspects: set[int] = set()

    def check(self) -> list[int]:
        """Settle the jobs seen without a runner on this beat and the last; return their ids."""
        with read_scope(self.engine) as conn:
            owned = set(
                conn.execute(
                    select(Job.id).where(col(Job.owner_run) == self.run_id, col(Job.status) == JobStatus.RUNNING)
                ).scalars()
            )
        without = owned - set(self.running())  # read after the query: a runner that ended meanwhile is not owned
        orphans, self.suspects = sorted(without & self.suspects), without
        for job_id in orphans:
            with logged_scope(self.engine) as (s, logs):
                self._settle(s, logs, job_id)
        return orphans

    def _settle(self, s: Session, logs: JobLogBuffer, job_id: int) -> None:
        job = s.exec(locked(s, select(Job).where(Job.id == job_id))).first()  # type: ignore[call-overload]
        if job is None or job.owner_run != self.run_id or job.status != JobStatus.RUNNING or job_id in self.running():
            return
        slot = s.get(Slot, job.slot_id)
        log.warning("job %s: %s", job_id, REASON)
        code = slot.code if slot else ""
        jobs.fail_device_if_ours(s, job, reason=REASON, actor=self.actor, slot_code=code, logs=logs)
        jobs.finish(s, job, JobStatus.FAILED, REASON, ACTION, logs=logs)
