"""Running one claimed job, step by step.

Crash safety comes from where the transaction boundaries are:

* opening the erase round (``start_sanitise``) commits with the step marked running;
* the engine erases every medium outside any transaction;
* the certificates for every medium and the ``sanitised`` transition commit together, after
  re-checking that this agent still owns the job and that the device's erase round is still the
  one this job opened.

So a certificate exists only for a round that completed; a crash or a pulled device in between
leaves the device in ``sanitising`` with no certificate, and reconciliation fails it with the
reason (a restart opens a new round). Every write first re-checks ownership, so an agent whose
job was reconciled away by another can never write to it again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, update
from sqlmodel import Session, select

from factory.intake.service import receive_device
from factory.kernel.config import Settings
from factory.kernel.db.engine import read_scope, session_scope
from factory.kernel.errors import FactoryError, NotFound
from factory.kernel.lifecycle.guards import CertificateVerifier
from factory.kernel.lifecycle.states import Event
from factory.kernel.lifecycle.transition import TransitionRequest, change_state
from factory.kernel.models.device import Device, MediaType, StorageMedium
from factory.line import jobs
from factory.line.bus import LineBus
from factory.line.models import Job, JobStatus, JobStep, Slot, StepStatus
from factory.line.pipeline_rules import Step
from factory.line.provision_step import Provisioner, ProvisionRequest
from factory.line.remote_media import RemoteEraseSettings, RemoteMedia, RemoteMediaError, connect_for_job
from factory.sanitisation.service import EraseRound, RoundOrigin, Signatories, Staff, certify_round, open_round
from imaging.certificate import Destination
from imaging.engine import Progress
from imaging.errors import ImagingError
from imaging.result import EraseResult, Level, VerifyMode

log = logging.getLogger(__name__)

EraseFn = Callable[..., EraseResult]
_STEP = JobStep.__table__  # type: ignore[attr-defined]


class StepFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class RunnerContext:
    engine: Engine
    settings: Settings
    agent: str
    run_id: str
    verifier: CertificateVerifier
    erase: EraseFn
    provisioner: Provisioner
    bus: LineBus
    level: Level = Level.CLEAR
    verify_mode: VerifyMode = VerifyMode.SAMPLE
    observers: list[Callable[[int, Progress], None]] = field(default_factory=list)
    remote: RemoteEraseSettings = field(default_factory=RemoteEraseSettings)  # switch-port slots: SSH

    @property
    def actor(self) -> str:
        return f"agent:{self.agent}"


# Why a job was stopped from outside, and how that ends it.
STOP_KINDS: dict[str, tuple[JobStatus, str]] = {
    "removed": (JobStatus.FAILED, "re-insert it to restart from the beginning, or send it for destruction"),
    "cancel": jobs.STOP_OUTCOMES["cancel"],
    "abort": jobs.STOP_OUTCOMES["abort"],
    "stopping": (JobStatus.INTERRUPTED, "restarts from the beginning when the controller is back"),
}


class JobRunner:
    def __init__(self, ctx: RunnerContext, job_id: int) -> None:
        self.ctx = ctx
        self.job_id = job_id
        self.cancel = threading.Event()
        self.stop_kind: str | None = None
        self.stop_reason: str | None = None
        self._step_index = 0
        self._step_count = 1
        self._work = 0.0
        self._completed = False
        self._slot: str | None = None
        # (step, step as shown with its phase, overall progress) while an erase runs; the
        # heartbeat copies it to the database for boards in other processes.
        self._live: tuple[str, str, float] | None = None
        self._live_written: tuple[str, str, float] | None = None
        self._remote: RemoteMedia | None = None  # the laptop's disks over SSH while a switch-port slot erases

    def request_stop(self, kind: str, reason: str) -> None:
        if self.stop_kind is None:
            self.stop_kind, self.stop_reason = kind, reason
        self.cancel.set()

    # ------------------------------------------------------------------ main loop

    def run(self) -> None:
        try:
            self._run()
        except jobs.LostOwnership as exc:
            log.warning("%s", exc)
        except Exception:  # a bug must not leave the job running forever: fail it with the reason
            log.exception("job %s crashed", self.job_id)
            self._fail("controller error while running the job (see the agent log)", None)
        finally:
            self.ctx.bus.publish("job", job=self.job_id)

    def _run(self) -> None:
        # Read-only: the claim already logged the start, and every step re-checks ownership.
        with read_scope(self.ctx.engine) as conn:
            steps = conn.execute(
                select(JobStep.id, JobStep.kind, JobStep.name)
                .where(JobStep.job_id == self.job_id)
                .order_by(JobStep.position)  # type: ignore[arg-type]
            ).all()
        plan = [(step_id, Step(kind), name) for step_id, kind, name in steps]
        self.ctx.bus.publish("job", job=self.job_id)
        self._step_count = max(1, len(plan))
        for index, (step_id, kind, name) in enumerate(plan):
            self._step_index = index
            if self.cancel.is_set():
                self._fail(self._stop_text(name, None), step_id)
                return
            try:
                handler = {
                    Step.BOOK_RETURN: self._book_return,
                    Step.SANITISE: self._sanitise_local_or_remote,
                    Step.PROVISION: self._provision,
                    Step.QUARANTINE: self._quarantine,
                }[kind]
                handler(step_id, name)
            except FactoryError as exc:  # a refused transition or guard: the step fails with its reason
                self._fail(self._stop_text(name, exc.reason) if self.cancel.is_set() else exc.reason, step_id)
                return
            except StepFailed as failure:
                self._fail(self._stop_text(name, failure.reason) if self.cancel.is_set() else failure.reason, step_id)
                return
        if not self._completed:  # no steps: nothing committed the end yet
            with session_scope(self.ctx.engine) as s:
                self._complete(s, jobs.ensure_owned(s, self.job_id, self.ctx.run_id))

    def _complete(self, s: Session, job: Job) -> None:
        """Finish the job as succeeded (held, for a quarantine), in the caller's transaction."""
        held = job.pipeline == "quarantine"
        job.progress, job.work_seconds = 1.0, self._work
        reason = "unknown device quarantined" if held else None
        jobs.finish(s, job, JobStatus.HELD if held else JobStatus.SUCCEEDED, reason, job.action if held else None)
        self._completed = True

    def _stop_text(self, step: str, detail: str | None) -> str:
        base = self.stop_reason or "stopped"
        return f"{base} during '{step}'" + (f" ({detail})" if detail else "")

    def _begin(self, s: Session, job: Job, name: str) -> dict[str, Any]:
        """Mark the job in this step; return the step row's values for :meth:`_write_step`."""
        now = jobs.utc_now()
        job.current_step, job.updated_at, job.progress = name, now, self._step_index / self._step_count
        s.add(job)
        jobs.log(s, self.job_id, f"step '{name}' started")
        self.ctx.bus.publish("job", job=self.job_id, step=name)
        return {"status": StepStatus.RUNNING.value, "started_at": now}

    def _end_step(self, s: Session, job: Job, name: str, status: StepStatus, outcome: str) -> dict[str, Any]:
        """The step is done (the last one also finishes the job, in the same transaction); return
        the step row's values for :meth:`_write_step`."""
        jobs.log(s, self.job_id, f"step '{name}' {status.value}: {outcome}")
        if self._step_index == self._step_count - 1:
            self._complete(s, job)
        return {"status": status.value, "ended_at": jobs.utc_now(), "outcome": outcome}

    @staticmethod
    def _write_step(s: Session, step_id: int, seq: int, **values: Any) -> None:
        """One UPDATE of the step row, after the step's transition: on PostgreSQL the ledger's
        lock is held from the append to the commit, so little should follow it. The transaction
        is all or nothing either way."""
        s.execute(update(_STEP).where(_STEP.c.id == step_id).values(custody_seq=seq, **values))

    def _fail(self, reason: str, step_id: int | None) -> None:
        status, action = STOP_KINDS.get(self.stop_kind or "", (JobStatus.FAILED, None))  # type: ignore[arg-type]
        try:
            with session_scope(self.ctx.engine) as s:
                job = jobs.ensure_owned(s, self.job_id, self.ctx.run_id)
                slot = s.get(Slot, job.slot_id)
                if action is None:
                    action = _failure_action(s, job)
                jobs.fail_device_if_ours(
                    s, job, reason=reason, actor=self.ctx.actor, slot_code=slot.code if slot else ""
                )
                job.work_seconds = self._work
                jobs.finish(s, job, status, reason, action)
        except jobs.LostOwnership as exc:
            log.warning("%s", exc)

    # ------------------------------------------------------------------ steps

    def _slot_code(self, s: Session, job: Job) -> str | None:
        if self._slot is None:
            slot = s.get(Slot, job.slot_id)
            self._slot = slot.code if slot else None
        return self._slot

    def _transition(self, s: Session, job: Job, event: Event, **evidence: Any) -> int:
        if job.device_id is None:
            raise NotFound(f"job {job.id} has no device")
        code = self._slot_code(s, job)  # a slot's code never changes
        entries = change_state(
            s,
            [
                TransitionRequest(
                    device_id=job.device_id,
                    event=event,
                    location=code,
                    evidence={"job": job.id, "slot": code, **evidence},
                )
            ],
            actor=self.ctx.actor,
            verifier=self.ctx.verifier,
        )
        return entries[0].seq

    def _book_return(self, step_id: int, name: str) -> None:
        with session_scope(self.ctx.engine) as s:
            job = jobs.ensure_owned(s, self.job_id, self.ctx.run_id)
            values = self._begin(s, job, name)
            values |= self._end_step(s, job, name, StepStatus.SUCCEEDED, "booked back into the factory")
            seq = self._transition(s, job, Event.RETURN, note="detected on a bench: booked back from the user")
            self._write_step(s, step_id, seq, **values)

    def _sanitise_local_or_remote(self, step_id: int, name: str) -> None:
        """A dock slot's disk is erased here; a switch-port slot's laptop over SSH (remote_media.py)."""
        try:
            self._remote = connect_for_job(self.ctx.engine, self.job_id, self.ctx.remote)
        except RemoteMediaError as exc:
            raise StepFailed(exc.reason) from exc
        try:
            self._sanitise(step_id, name)
        finally:
            if self._remote is not None:
                self._remote.close()
                self._remote = None

    def _sanitise(self, step_id: int, name: str) -> None:
        round_, targets = self._open_erase_round(step_id, name)
        results: list[tuple[str, EraseResult]] = []
        for n, (serial, path) in enumerate(targets):
            started = time.monotonic()
            try:
                result = (self._remote.erase if self._remote is not None else self.ctx.erase)(
                    path,
                    level=self.ctx.level,
                    verify=self.ctx.verify_mode,
                    progress=lambda p, n=n: self._on_progress(name, p, n, len(targets)),
                    cancel=self.cancel,
                )
            except (ImagingError, RemoteMediaError) as exc:  # refused, unplannable, or the channel failed
                raise StepFailed(f"medium {serial}: {exc}") from exc
            finally:
                self._work += time.monotonic() - started
            if not result.ok:
                raise StepFailed(f"medium {serial}: {result.failure_reason}")
            results.append((serial, result))
        self._live = None
        if self.cancel.is_set():  # pulled or cancelled after the last byte: do not certify
            raise StepFailed("stopped before certification")
        self._certify(step_id, name, round_, results)

    def _certify(self, step_id: int, name: str, round_: EraseRound, results: list[tuple[str, EraseResult]]) -> None:
        """The certificates and ``sanitised`` commit together, after the ownership and round re-checks."""
        with session_scope(self.ctx.engine) as s:
            job = jobs.ensure_owned(s, self.job_id, self.ctx.run_id)
            device = jobs.device_of(s, job)
            signatories = Signatories(
                Staff(self.ctx.actor, title="Bench controller"),
                Staff(self.ctx.actor, title="Automated validation (read-back verification)"),
                Destination(job.destination),
            )
            ended: dict[str, Any] = {}

            def end_step(cert_ids: list[str]) -> None:  # after the certificates, before ``sanitised``
                outcome = f"{len(cert_ids)} medium(s) erased and certified"
                ended.update(self._end_step(s, job, name, StepStatus.SUCCEEDED, outcome))

            origin = self._round_origin(s, job)
            closed = certify_round(
                s, self.ctx.settings, device, round_, results, origin, signatories, before_close=end_step
            )
            self._write_step(s, step_id, closed.seq, **ended)

    def _round_origin(self, s: Session, job: Job) -> RoundOrigin:
        """How this job's erase-round entries name the bench: as every other transition of the job does."""
        code = self._slot_code(s, job)
        return RoundOrigin(self.ctx.actor, self.ctx.verifier, location=code, evidence={"job": job.id, "slot": code})

    def _open_erase_round(self, step_id: int, name: str) -> tuple[EraseRound, list[tuple[str, str]]]:
        """Match recorded media to what is attached, then open the erase round (one commit)."""
        with session_scope(self.ctx.engine) as s:
            job = jobs.ensure_owned(s, self.job_id, self.ctx.run_id)
            started = self._begin(s, job, name)
            slot = s.get(Slot, job.slot_id)
            on_port = self._remote is not None  # a switch-port slot has no local device node
            if slot is None or slot.attachment_id != job.attachment_id or not (on_port or slot.attached_node):
                raise StepFailed("the device is no longer in its slot")
            device = jobs.device_of(s, job)
            media = s.exec(select(StorageMedium).where(StorageMedium.device_id == device.id)).all()
            if not media and slot.attached_serial and not on_port:
                medium = StorageMedium(
                    device_id=device.id or 0,
                    serial=slot.attached_serial,
                    media_type=MediaType.SATA_SSD.value,
                    capacity_bytes=slot.attached_size or 0,
                )
                s.add(medium)
                s.flush()
                media = [medium]
                jobs.log(s, self.job_id, f"no media recorded: recorded attached disk {slot.attached_serial}", "warn")
            where = self._remote.paths if self._remote is not None else {slot.attached_serial: slot.attached_node}
            missing = [m.serial for m in media if m.serial not in where]
            if missing:
                raise StepFailed(f"media {', '.join(missing)} recorded on the device are not attached in {slot.code}")
            remote = {"remote": self._remote.label} if self._remote is not None else {}  # as the remote path does
            round_ = open_round(s, device, media, self._round_origin(s, job), **remote)
            self._write_step(s, step_id, round_.seq, **started)
            jobs.log(s, self.job_id, f"erase round {round_.seq} opened for {', '.join(round_.serials)}")
            return round_, [(m.serial, where[m.serial]) for m in media]

    def _provision(self, step_id: int, name: str) -> None:
        with session_scope(self.ctx.engine) as s:
            job = jobs.ensure_owned(s, self.job_id, self.ctx.run_id)
            started = self._begin(s, job, name)
            seq = self._transition(s, job, Event.START_PROVISION, provisioner=self.ctx.provisioner.name)
            self._write_step(s, step_id, seq, **started)
            device = s.get(Device, job.device_id)  # locked and loaded by the transition
            assert device is not None
            request = ProvisionRequest(
                job_id=self.job_id,
                device_serial=device.serial,
                kind=device.kind,
                role=device.role,
                profile=job.profile,
                slot=self._slot_code(s, job) or "",
                cancel=self.cancel,
            )
        started = time.monotonic()
        try:
            outcome = self.ctx.provisioner(request)
        except Exception as exc:  # a provisioner bug is a failed provisioning, with its reason
            raise StepFailed(f"provisioner error: {type(exc).__name__}: {exc}") from exc
        finally:
            self._work += time.monotonic() - started
        if not outcome.ok:
            raise StepFailed(outcome.detail)
        with session_scope(self.ctx.engine) as s:
            job = jobs.ensure_owned(s, self.job_id, self.ctx.run_id)
            status = StepStatus.NOOP if outcome.noop else StepStatus.SUCCEEDED
            ended = self._end_step(s, job, name, status, outcome.detail)
            seq = self._transition(
                s,
                job,
                Event.PROVISIONED,
                provisioner=self.ctx.provisioner.name,
                noop=outcome.noop,
                detail=outcome.detail,
            )
            self._write_step(s, step_id, seq, **ended)

    def _quarantine(self, step_id: int, name: str) -> None:
        with session_scope(self.ctx.engine) as s:
            job = jobs.ensure_owned(s, self.job_id, self.ctx.run_id)
            values = self._begin(s, job, name)
            slot = s.get(Slot, job.slot_id)
            assert slot is not None
            if not job.device_serial:
                raise StepFailed("the port reported no serial number: the device cannot be booked in")
            values |= self._end_step(s, job, name, StepStatus.SUCCEEDED, "booked in and quarantined for a technician")
            device = receive_device(
                s,
                serial=job.device_serial,
                kind=slot.default_kind,
                actor=self.ctx.actor,
                from_custodian="unknown",
                location=slot.code,
            )
            entries = change_state(
                s,
                [
                    TransitionRequest(
                        device_id=device.id or 0,
                        event=Event.QUARANTINE,
                        evidence={
                            "reason": "unknown device found in a bench slot",
                            "job": job.id,
                            "slot": slot.code,
                            "detected_size_bytes": slot.attached_size,
                        },
                    )
                ],
                actor=self.ctx.actor,
            )
            job.device_id = slot.device_id = device.id
            s.add(job)
            s.add(slot)
            self._write_step(s, step_id, entries[0].seq, **values)

    # ------------------------------------------------------------------ progress

    def _on_progress(self, step: str, p: Progress, medium_index: int, media: int) -> None:
        within = p.bytes_done / p.bytes_total if p.bytes_total else 0.0
        phase = 0.0 if p.phase in ("write", "firmware") else 1.0
        medium_part = (phase + within) / 2.0  # write then verify, each half of a medium
        step_part = (medium_index + medium_part) / max(1, media)
        overall = (self._step_index + step_part) / self._step_count
        for observer in self.ctx.observers:
            observer(self.job_id, p)
        self.ctx.bus.publish("progress", job=self.job_id, step=f"{step} ({p.phase})", progress=overall)
        self._live = (step, f"{step} ({p.phase})", overall)

    def progress_to_write(self) -> tuple[str, str, float] | None:
        """The erase progress not yet in the database (the heartbeat writes it), else None."""
        live = self._live
        if live is None or live == self._live_written:
            return None
        self._live_written = live
        return live


def _failure_action(s: Session, job: Job) -> str:
    step = s.exec(select(JobStep).where(JobStep.job_id == job.id, JobStep.status == StepStatus.RUNNING)).first()
    if step is not None and step.kind == Step.PROVISION:
        return "retry provisioning, or check the provisioning log"
    return "retry (restarts the wipe from the beginning) or send the device for destruction"
