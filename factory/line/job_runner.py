"""Running one claimed job, step by step (the steps themselves: ``job_steps.py`` and, for the
erase, ``erase_step.py``).

Crash safety comes from where the transaction boundaries are:

* opening the erase round (``start_sanitise``) commits with the step marked running;
* the engine erases every medium outside any transaction;
* the certificates for every medium and the ``sanitised`` transition commit together, after
  re-checking that this agent still owns the job and that the device's erase round is still the
  one this job opened; with the next step's start when there is one (``carried_end.py``: one
  transaction fewer, and whatever the job does instead of starting it, the certificates of a
  verified erase still commit first, on their own).

So a certificate exists only for a round that completed; a crash or a pulled device in between
leaves the device in ``sanitising`` with no certificate, and reconciliation fails it with the
reason (a restart opens a new round). Every write first re-checks ownership, so an agent whose
job was reconciled away by another can never write to it again.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, update
from sqlmodel import Session

from factory.kernel.clock import utc_now
from factory.kernel.config import Settings
from factory.kernel.db.engine import session_scope
from factory.kernel.db.errors import busy_cause, is_busy
from factory.kernel.db.retry import until_reachable
from factory.kernel.errors import FactoryError
from factory.kernel.ledger.append import RowBatch, SeqStamp
from factory.kernel.lifecycle.guards import CertificateVerifier
from factory.kernel.lifecycle.states import Event
from factory.kernel.lifecycle.transition import TransitionRequest, change_state
from factory.line import jobs
from factory.line.bus import LineBus
from factory.line.carried_end import CarriedEnd, EndWrites, HeldEnd
from factory.line.erase_step import sanitise
from factory.line.errors import JobNotFound, LostOwnership, StepFailed, StepHeld
from factory.line.job_log import JobLogBuffer
from factory.line.job_steps import book_return, provision, quarantine
from factory.line.models import Job, JobLog, JobStatus, JobStep, Slot, StepStatus, StopKind
from factory.line.personalise_step import personalise
from factory.line.pipeline_rules import Step
from factory.line.provision_step import Provisioner
from factory.line.remote_media import RemoteEraseSettings
from factory.line.tablet_steps import enrol, identify_tablet
from factory.tablets.service import TabletBench
from imaging.engine import Progress
from imaging.result import EraseResult, Level, VerifyMode

log = logging.getLogger(__name__)

EraseFn = Callable[..., EraseResult]
StepHandler = Callable[["JobRunner", int, str], None]
_STEP = JobStep.__table__  # type: ignore[attr-defined]
_JOB = Job.__table__  # type: ignore[attr-defined]
_LOG = JobLog.__table__  # type: ignore[attr-defined]

__all__ = ["EraseFn", "JobRunner", "RunnerContext", "StepFailed"]
# What runs each kind of step (``job_steps.py``, ``erase_step.py``).
_HANDLERS: dict[Step, StepHandler] = {
    Step.BOOK_RETURN: book_return,
    Step.SANITISE: sanitise,
    Step.PROVISION: provision,
    Step.PERSONALISE: personalise,
    Step.QUARANTINE: quarantine,
    Step.IDENTIFY_TABLET: identify_tablet,
    Step.ENROL: enrol,
}


@dataclass
class RunnerContext:
    engine: Engine
    settings: Settings
    agent: str
    run_id: str
    verifier: CertificateVerifier
    erase: EraseFn
    provisioner: Provisioner | None  # None: no provisioning settings, provision steps hold the job
    bus: LineBus
    tablets: TabletBench | None = None  # None: no tablet settings, tablet steps hold their job
    level: Level = Level.CLEAR
    verify_mode: VerifyMode = VerifyMode.SAMPLE
    observers: list[Callable[[int, Progress], None]] = field(default_factory=list)
    remote: RemoteEraseSettings = field(default_factory=RemoteEraseSettings)  # switch-port slots: SSH
    stopping: threading.Event = field(default_factory=threading.Event)  # the controller is stopping
    lease_seconds: float = 6.0  # each step's transaction renews its job's lease (the heartbeat may pass it over)

    @property
    def actor(self) -> str:
        return f"agent:{self.agent}"


class JobRunner:
    def __init__(self, ctx: RunnerContext, job_id: int, plan: jobs.RunPlan | None = None) -> None:
        self.ctx = ctx
        self.job_id = job_id
        self.plan = plan  # None: read by run() (the job was not created in the claim's transaction)
        self.cancel = threading.Event()
        self.stop_kind: StopKind | None = None
        self.stop_reason: str | None = None
        self.step_index = 0
        self.step_count = 1
        self.work = 0.0  # seconds in the work itself (engine, provisioner), not controller overhead
        self._completed = False
        self._slot: str | None = None
        # The job-log lines of the transaction in progress (one at a time: the runner is one thread).
        self.logs = JobLogBuffer()
        # (step, step as shown with its phase, overall progress) while an erase runs; the
        # heartbeat copies it to the database for boards in other processes.
        self.live: tuple[str, str, float] | None = None
        self.on_switch_port = True  # until the plan is read: a switch-port slot's laptop is erased over SSH
        self._marked: str | None = None  # the step the open scope's job marks were written for
        self.carried = CarriedEnd()  # a step's end held over for the next step's start (carried_end.py)
        self._live_written: tuple[str, str, float] | None = None

    def request_stop(self, kind: StopKind, reason: str) -> None:
        if self.stop_kind is None:
            self.stop_kind, self.stop_reason = kind, reason
        self.cancel.set()

    # ------------------------------------------------------------------ main loop

    def run(self) -> None:
        try:
            self._run()
        except LostOwnership as exc:
            log.warning("%s", exc)
        except Exception as exc:  # a bug must not leave the job running forever: fail it with the reason
            if is_busy(exc):  # gone mid-step (failover) or rolled back (deadlock): its outcome unknown
                log.warning("job %s: database unavailable, failing the job once it is back: %s", self.job_id, exc)
                self._fail(f"{busy_cause(exc)} during the job (see the agent log)", None)
            else:
                log.exception("job %s crashed", self.job_id)
                self._fail("controller error while running the job (see the agent log)", None)
        finally:
            self.ctx.bus.publish("job", job=self.job_id)

    def _run(self) -> None:
        run_plan = self.plan if self.plan is not None else jobs.read_plan(self.ctx.engine, self.job_id)
        plan, self.on_switch_port = run_plan.steps, run_plan.on_switch_port
        self.ctx.bus.publish("job", job=self.job_id)
        self.step_count = max(1, len(plan))
        for index, (step_id, kind, name) in enumerate(plan):
            self.step_index = index
            if self.cancel.is_set():
                if self._settle():
                    self._fail(self._stop_text(name, None), step_id)
                return
            try:
                _HANDLERS[kind](self, step_id, name)
            except StepHeld as held:
                if self._settle():
                    self._hold(held, step_id, name)
                return
            except (FactoryError, StepFailed) as exc:  # a refused transition or guard, or a failed step
                failed = exc if isinstance(exc, StepFailed) else None
                reason = self._stop_text(name, exc.reason) if self.cancel.is_set() else exc.reason
                if self._settle():
                    self._fail(reason, step_id, failed)
                return
        if not self._settle():
            return
        if not self._completed:  # no steps: nothing committed the end yet
            with self.scope() as (s, job):
                self._complete(s, job)

    def _complete(self, s: Session, job: Job) -> None:
        """Finish the job as succeeded (held, for a quarantine), in the caller's transaction."""
        held = job.pipeline == "quarantine"
        job.progress, job.work_seconds = 1.0, self.work
        reason = "unknown device quarantined" if held else None
        status = JobStatus.HELD if held else JobStatus.SUCCEEDED
        jobs.finish(s, job, status, reason, job.action if held else None, logs=self.logs)
        self._completed = True

    def _hold(self, held: StepHeld, step_id: int, name: str) -> None:
        """End the job held at this step, which did not run: the device keeps its state (no custody
        entry), the board shows the reason and what to do."""
        with self.scope() as (s, job):
            job.current_step, job.work_seconds = name, self.work
            self.logs.add(self.job_id, f"step '{name}' not run: {held.reason}", "warn")
            s.execute(
                update(_STEP)
                .where(_STEP.c.id == step_id)
                .values(status=StepStatus.SKIPPED.value, ended_at=utc_now(), outcome=held.reason)
            )
            jobs.finish(s, job, JobStatus.HELD, held.reason, held.action, logs=self.logs)
            self._completed = True

    def _stop_text(self, step: str, detail: str | None) -> str:
        base = self.stop_reason or "stopped"
        return f"{base} during '{step}'" + (f" ({detail})" if detail else "")

    def _fail(self, reason: str, step_id: int | None, failed: StepFailed | None = None) -> None:
        """Fail the job (and the device, if this job put it in progress). While the database cannot
        be reached (a standby being promoted) keep trying until the controller stops: given up, the
        job would stay 'running' under this live agent, its slot blocked, until a restart."""
        until_reachable(
            lambda: self._write_failure(reason, failed), stopping=self.ctx.stopping, what=f"job {self.job_id}'s end"
        )

    def _write_failure(self, reason: str, failed: StepFailed | None = None) -> None:
        stopped = jobs.STOP_OUTCOMES.get(self.stop_kind) if self.stop_kind is not None else None
        status, action = stopped if stopped is not None else (JobStatus.FAILED, None)
        try:
            with self.scope() as (s, job):
                slot = s.get(Slot, job.slot_id)
                if action is None:
                    action = (failed.action if failed else None) or jobs.failure_action(s, job)
                code = slot.code if slot else ""
                evidence = failed.evidence if failed else {}
                if evidence:
                    self.logs.add(self.job_id, f"failure evidence: {json.dumps(evidence, sort_keys=True)}", "error")
                jobs.fail_device_if_ours(
                    s, job, reason=reason, actor=self.ctx.actor, slot_code=code, logs=self.logs, evidence=evidence
                )
                job.work_seconds = self.work
                jobs.finish(s, job, status, reason, action, logs=self.logs)
        except LostOwnership as exc:
            log.warning("%s", exc)

    # ------------------------------------------------------------------ what the steps use

    @contextmanager
    def scope(self, starting: str | None = None) -> Iterator[tuple[Session, Job]]:
        """One transaction on the job, which must still be ours (else ``LostOwnership``). Its
        log lines go in before its transition (see :meth:`transition`) or at its end; a rollback
        drops them with the rest. ``starting``: the step it begins (:meth:`begin`), whose marks on
        the job go in the statement that checks ownership rather than in an UPDATE of their own.
        The job's device (if it has one) is locked by that statement too: nearly every step's
        transaction moves it, and locking it later would cost a round trip of its own."""
        self.logs = JobLogBuffer()
        marks = self._marks(starting) if starting is not None else {}
        lease = time.time() + self.ctx.lease_seconds
        held, stage = self.carried.take(), "checking"
        try:
            with session_scope(self.ctx.engine) as s:
                # Ours, locked and its lease renewed here, as the heartbeat skips rows a runner holds.
                job = jobs.hold_for_step(s, self.job_id, self.ctx.run_id, lease, marks, with_device=True)
                self._marked = starting
                if held is not None:  # the previous step's end goes first
                    stage = "writing"
                    self._write_held(held, s, job)
                stage = "body"
                yield s, job
                stage = "committing"
                self.logs.flush(s)
        except BaseException:
            # Not written through no fault of its own: pending again. Not when it failed itself, nor
            # when the commit did (its outcome unknown: a certificate must not be signed twice).
            if held is not None and stage in ("checking", "body"):
                self.carried.give_back(held)
            raise

    def end_with_next_start(self, write: EndWrites) -> None:
        """Write this step's end (``write(s, job)``) with the next step's start, in its first
        transaction (``carried_end.py``); the last step's end at once, in a transaction of its own."""
        if self.step_index < self.step_count - 1:
            self.carried.hold(self.step_index, write)
            return
        with self.scope() as (s, job):
            write(s, job)

    def _write_held(self, held: HeldEnd, s: Session, job: Job) -> None:
        current, self.step_index = self.step_index, held.index  # as when its step ran
        try:
            held.write(s, job)
        finally:
            self.step_index = current

    def _settle(self) -> bool:
        """Commit a held-over step end on its own, before the job is held, failed or stopped
        instead of the next step starting; False if it failed (the job is failed with its reason)."""
        if not self.carried.pending:
            return True
        try:
            with self.scope():
                pass
        except (FactoryError, StepFailed) as exc:
            self._fail(exc.reason, None, exc if isinstance(exc, StepFailed) else None)
            return False
        return True

    def _marks(self, name: str) -> dict[str, Any]:
        return {"current_step": name, "updated_at": utc_now(), "progress": self.step_index / self.step_count}

    def begin(self, s: Session, job: Job, name: str) -> dict[str, Any]:
        """Mark the job in this step (done already if the scope was opened ``starting`` it);
        return the step row's values for :meth:`step_stamp`."""
        if self._marked != name:
            for column, value in self._marks(name).items():
                setattr(job, column, value)
            s.add(job)
        now = job.updated_at
        self.logs.add(self.job_id, f"step '{name}' started")
        self.ctx.bus.publish("job", job=self.job_id, step=name)
        return {"status": StepStatus.RUNNING.value, "started_at": now}

    def end_step(self, s: Session, job: Job, name: str, status: StepStatus, outcome: str) -> dict[str, Any]:
        """The step is done (the last one also finishes the job, in the same transaction); return
        the step row's values for :meth:`step_stamp`."""
        self.logs.add(self.job_id, f"step '{name}' {status.value}: {outcome}")
        if self.step_index == self.step_count - 1:
            self._complete(s, job)
        return {"status": status.value, "ended_at": utc_now(), "outcome": outcome}

    @staticmethod
    def stamps_for_entry(job: Job, step: SeqStamp | None) -> tuple[SeqStamp, ...]:
        """``step`` and the job's changes not yet written, as updates written with the next custody
        entry (in its one statement on PostgreSQL). Taken before any query, which would flush the
        job's changes in an UPDATE of their own."""
        return tuple(stamp for stamp in (step, jobs.unwritten_changes(job)) if stamp is not None)

    def log_rows(self) -> tuple[RowBatch, ...]:
        """The log lines so far, to be written with the transaction's custody entry (in its one
        statement on PostgreSQL) instead of in an INSERT of their own; the buffer is emptied."""
        lines = self.logs.take()
        return (RowBatch(_LOG, lines),) if lines else ()

    @staticmethod
    def step_stamp(step_id: int, **values: Any) -> SeqStamp:
        """The step row's update, with the seq of the transition it is passed to (``custody_seq``):
        written with the custody entry, in the same statement on PostgreSQL, where the ledger's
        lock is held from the append to the commit. The transaction is all or nothing either way."""
        return SeqStamp(_STEP, step_id, "custody_seq", values)

    def slot_code(self, s: Session, job: Job) -> str | None:
        if self._slot is None:
            slot = s.get(Slot, job.slot_id)
            self._slot = slot.code if slot else None
        return self._slot

    def transition(self, s: Session, job: Job, event: Event, *, step: SeqStamp | None = None, **evidence: Any) -> int:
        """The job's device takes ``event`` (evidence names the job and slot); the ledger seq.

        Written with the entry (in its one statement on PostgreSQL, no round trip of their own):
        ``step``, the step row's update (:meth:`step_stamp`); the job's changes not yet written (a
        step's end, the job's finish); the log lines so far. All or nothing with it, as before.
        """
        if job.device_id is None:
            raise JobNotFound(f"job {job.id} has no device")
        stamps = self.stamps_for_entry(job, step)  # first: any query below would flush the job on its own
        code = self.slot_code(s, job)  # a slot's code never changes
        entries = change_state(
            s,
            [
                TransitionRequest(
                    job.device_id,
                    event,
                    location=code,
                    evidence={"job": job.id, "slot": code, **evidence},
                    stamps=stamps,
                    rows=self.log_rows(),
                )
            ],
            actor=self.ctx.actor,
            verifier=self.ctx.verifier,
        )
        return entries[0].seq

    # ------------------------------------------------------------------ progress

    def on_progress(self, step: str, p: Progress, medium_index: int, media: int) -> None:
        within = p.bytes_done / p.bytes_total if p.bytes_total else 0.0
        phase = 0.0 if p.phase in ("write", "firmware") else 1.0
        medium_part = (phase + within) / 2.0  # write then verify, each half of a medium
        step_part = (medium_index + medium_part) / max(1, media)
        overall = (self.step_index + step_part) / self.step_count
        for observer in self.ctx.observers:
            observer(self.job_id, p)
        self.ctx.bus.publish("progress", job=self.job_id, step=f"{step} ({p.phase})", progress=overall)
        self.live = (step, f"{step} ({p.phase})", overall)

    def progress_to_write(self) -> tuple[str, str, float] | None:
        """The erase progress not yet in the database (the heartbeat writes it), else None."""
        live = self.live
        if live is None or live == self._live_written:
            return None
        self._live_written = live
        return live
