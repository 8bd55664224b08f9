"""The controller's dispatcher: claims queued jobs on the agent's benches within the bench and
site limits, and runs each claimed job on a thread of its own.

Events claim the job they create in their own transaction when there is room
(:meth:`JobDispatcher.claim_here`); the dispatcher's loop claims the rest (retries, capacity
freed by a job that ended) whenever it is woken.
"""

from __future__ import annotations

import logging
import threading
import time

from sqlmodel import Session, col, select

from factory.kernel.db.engine import read_scope, session_scope
from factory.kernel.db.errors import is_busy
from factory.line.bench_config import LineConfig
from factory.line.job_log import JobLogBuffer
from factory.line.job_runner import JobRunner, RunnerContext
from factory.line.jobs import RunPlan
from factory.line.leases import claim_jobs
from factory.line.models import Job, JobStatus, StopKind
from factory.line.orphans import OrphanWatch

log = logging.getLogger(__name__)
# How often the dispatcher looks for jobs of ours without a runner (two sightings fail one).
ORPHAN_CHECK_SECONDS = 2.0


class JobDispatcher:
    def __init__(
        self,
        config: LineConfig,
        runner_ctx: RunnerContext,
        *,
        site: str,
        wake: threading.Event,
        stopping: threading.Event,
        lost: threading.Event,
    ) -> None:
        self.config = config
        self.runner_ctx = runner_ctx
        self.site = site
        self.bench_ids: list[int] = []
        self._wake, self._stopping, self._lost = wake, stopping, lost
        self._runners: dict[int, JobRunner] = {}
        self._threads: dict[int, threading.Thread] = {}
        self._lock = threading.Lock()
        self._queued_query = select(Job.id).where(Job.status == JobStatus.QUEUED).limit(1)  # narrowed by take()
        self.orphans = OrphanWatch(runner_ctx.engine, runner_ctx.run_id, runner_ctx.actor, lambda: self.running_jobs)

    def take(self, bench_ids: list[int]) -> None:
        """Work on these benches (the agent holds them now)."""
        self.bench_ids = bench_ids
        self._queued_query = (
            select(Job.id).where(Job.status == JobStatus.QUEUED, col(Job.bench_id).in_(bench_ids)).limit(1)
        )

    @property
    def running_jobs(self) -> list[int]:
        with self._lock:
            return list(self._runners)

    def runner(self, job_id: int) -> JobRunner | None:
        with self._lock:
            return self._runners.get(job_id)

    def runners(self) -> list[JobRunner]:
        with self._lock:
            return list(self._runners.values())

    def stop_all(self, kind: StopKind, reason: str) -> None:
        for runner in self.runners():
            runner.request_stop(kind, reason)

    def join(self, timeout: float) -> None:
        with self._lock:
            threads = list(self._threads.values())
        for thread in threads:
            thread.join(timeout=timeout)

    # ------------------------------------------------------------------ claiming

    def capacity(self) -> int:
        per_agent = sum(b.max_jobs for b in self.config.benches)
        return min(per_agent, self.config.site_max_jobs) - len(self.running_jobs)

    def claim(self, s: Session, logs: JobLogBuffer) -> list[int]:
        return claim_jobs(
            s,
            agent=self.config.agent,
            run_id=self.runner_ctx.run_id,
            bench_ids=self.bench_ids,
            site=self.site,
            site_limit=self.config.site_max_jobs,
            limit=self.capacity(),
            lease_seconds=self.config.lease_seconds,
            logs=logs,
            technician=self.config.technician,
        )

    def claim_here(self, s: Session, logs: JobLogBuffer) -> list[int]:
        """Claim the new job in the transaction that created it, saving the dispatcher's round
        trip; if that fails, the attachment still commits and the dispatcher claims it later.
        The claim's log lines join ``logs`` (one insert with the attachment's) once it holds."""
        if self._stopping.is_set() or self._lost.is_set():
            return []
        mine = JobLogBuffer()  # lines of a claim that fails must not be written
        try:
            with s.begin_nested():
                claimed = self.claim(s, mine)
            logs.extend(mine.take())
            return claimed
        except Exception as exc:
            if is_busy(exc):  # the connection is gone, and with it the attachment: the event is retried
                raise
            log.warning("claim at attach failed, left to the dispatcher: %s", exc)
            return []

    def anything_queued(self) -> bool:
        """A read (no write lock): most wake-ups (a job ended, a slot emptied) have nothing to claim."""
        try:
            with read_scope(self.runner_ctx.engine) as conn:
                return conn.execute(self._queued_query).first() is not None
        except Exception as exc:
            log.warning("queue check failed: %s", exc)
            return True  # let the claim try, and report its own error

    def loop(self) -> None:
        orphan_check = time.monotonic() + ORPHAN_CHECK_SECONDS
        while not self._stopping.is_set():
            self._wake.wait(timeout=0.25)
            self._wake.clear()
            if self._stopping.is_set() or self._lost.is_set():
                return
            if time.monotonic() >= orphan_check:
                orphan_check = time.monotonic() + ORPHAN_CHECK_SECONDS
                self._settle_orphans()
            if self.capacity() <= 0 or not self.anything_queued():
                continue
            try:
                with session_scope(self.runner_ctx.engine) as s:
                    logs = JobLogBuffer()
                    claimed = self.claim(s, logs)
                    logs.flush(s)
            except Exception as exc:
                log.warning("claim failed, retrying: %s", exc)
                time.sleep(0.2)
                continue
            for job_id in claimed:
                self.launch(job_id)

    def _settle_orphans(self) -> None:
        """Fail our running jobs that have no runner here (orphans.py: a claim whose commit landed unseen)."""
        try:
            self.orphans.check()
        except Exception as exc:  # the database may be away; the next round tries again
            log.warning("orphaned job check failed: %s", exc)

    # ------------------------------------------------------------------ running

    def launch(self, job_id: int, plan: RunPlan | None = None) -> None:
        """Run the claimed job on a thread of its own; ``plan``, if the claim's transaction created
        the job, spares the runner reading it."""
        runner = JobRunner(self.runner_ctx, job_id, plan)
        thread = threading.Thread(target=self._run_job, args=(runner,), name=f"job-{job_id}", daemon=True)
        with self._lock:
            self._runners[job_id] = runner
            self._threads[job_id] = thread
        thread.start()

    def _run_job(self, runner: JobRunner) -> None:
        try:
            runner.run()
        finally:
            with self._lock:
                self._runners.pop(runner.job_id, None)
                self._threads.pop(runner.job_id, None)
            self._wake.set()
