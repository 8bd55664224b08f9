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

from sqlalchemy import Engine
from sqlmodel import Session, select

from factory.config import Settings
from factory.db.engine import session_scope
from factory.devices import receive_device
from factory.errors import FactoryError
from factory.lifecycle.guards import CertificateVerifier
from factory.lifecycle.states import Event, State
from factory.lifecycle.transition import TransitionRequest, change_state
from factory.line import jobs
from factory.line.bus import LineBus
from factory.line.pipeline import Step
from factory.line.provision import Provisioner, ProvisionRequest
from factory.models.device import MediaType, StorageMedium
from factory.models.line import Job, JobStatus, JobStep, Slot, StepStatus
from factory.sanitisation import Staff, certify_medium
from imaging.certificate import Destination
from imaging.engine import Progress
from imaging.errors import ImagingError
from imaging.result import EraseResult, Level, VerifyMode

log = logging.getLogger(__name__)

EraseFn = Callable[..., EraseResult]
PROGRESS_DB_INTERVAL = 2.0  # the database copy is for boards in other processes


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
        self._last_db = 0.0
        self._work = 0.0

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
        with session_scope(self.ctx.engine) as s:
            job = jobs.ensure_owned(s, self.job_id, self.ctx.run_id)
            steps = s.exec(select(JobStep).where(JobStep.job_id == job.id).order_by(JobStep.position)).all()  # type: ignore[arg-type]
            plan = [(st.id or 0, Step(st.kind), st.name) for st in steps]
            final = JobStatus.HELD if job.pipeline == "quarantine" else JobStatus.SUCCEEDED
            jobs.log(s, self.job_id, f"started by {self.ctx.agent}")
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
                    Step.SANITISE: self._sanitise,
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
        with session_scope(self.ctx.engine) as s:
            job = jobs.ensure_owned(s, self.job_id, self.ctx.run_id)
            job.progress, job.work_seconds = 1.0, self._work
            action = job.action if final is JobStatus.HELD else None
            reason = "unknown device quarantined" if final is JobStatus.HELD else None
            jobs.finish(s, job, final, reason, action)

    def _stop_text(self, step: str, detail: str | None) -> str:
        base = self.stop_reason or "stopped"
        return f"{base} during '{step}'" + (f" ({detail})" if detail else "")

    def _begin(self, s: Session, job: Job, step_id: int, name: str) -> None:
        """Mark the step running, inside the step's first transaction."""
        step = s.get(JobStep, step_id)
        assert step is not None
        now = jobs.utc_now()
        step.status, step.started_at = StepStatus.RUNNING, now
        job.current_step, job.updated_at, job.progress = name, now, self._step_index / self._step_count
        s.add(step)
        s.add(job)
        jobs.log(s, self.job_id, f"step '{name}' started")
        self.ctx.bus.publish("job", job=self.job_id, step=name)

    def _end_step(self, s: Session, step_id: int, status: StepStatus, outcome: str, seq: int | None = None) -> None:
        step = s.get(JobStep, step_id)
        assert step is not None
        step.status, step.ended_at, step.outcome = status, jobs.utc_now(), outcome
        if seq is not None:
            step.custody_seq = seq
        s.add(step)
        jobs.log(s, self.job_id, f"step '{step.name}' {status.value}: {outcome}")

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

    def _transition(self, s: Session, job: Job, event: Event, **evidence: Any) -> int:
        slot = s.get(Slot, job.slot_id)
        device = jobs.device_of(s, job)
        entries = change_state(
            s,
            [
                TransitionRequest(
                    device_id=device.id or 0,
                    event=event,
                    location=slot.code if slot else None,
                    evidence={"job": job.id, "slot": slot.code if slot else None, **evidence},
                )
            ],
            actor=self.ctx.actor,
            verifier=self.ctx.verifier,
        )
        return entries[0].seq

    def _book_return(self, step_id: int, name: str) -> None:
        with session_scope(self.ctx.engine) as s:
            job = jobs.ensure_owned(s, self.job_id, self.ctx.run_id)
            self._begin(s, job, step_id, name)
            seq = self._transition(s, job, Event.RETURN, note="detected on a bench: booked back from the user")
            self._end_step(s, step_id, StepStatus.SUCCEEDED, "booked back into the factory", seq)

    def _sanitise(self, step_id: int, name: str) -> None:
        targets, round_seq = self._open_erase_round(step_id, name)
        results: list[tuple[int, EraseResult]] = []
        for n, (medium_id, serial, path) in enumerate(targets):
            started = time.monotonic()
            try:
                result = self.ctx.erase(
                    path,
                    level=self.ctx.level,
                    verify=self.ctx.verify_mode,
                    progress=lambda p, n=n: self._on_progress(name, p, n, len(targets)),
                    cancel=self.cancel,
                )
            except ImagingError as exc:  # refused or unplannable: nothing was written
                raise StepFailed(f"medium {serial}: {exc}") from exc
            finally:
                self._work += time.monotonic() - started
            if not result.ok:
                raise StepFailed(f"medium {serial}: {result.failure_reason}")
            results.append((medium_id, result))
        if self.cancel.is_set():  # pulled or cancelled after the last byte: do not certify
            raise StepFailed("stopped before certification")
        with session_scope(self.ctx.engine) as s:
            job = jobs.ensure_owned(s, self.job_id, self.ctx.run_id)
            device = jobs.device_of(s, job)
            if device.state != State.SANITISING or device.erase_round_seq != round_seq:
                raise StepFailed(f"device {device.serial} left erase round {round_seq}: no certificate issued")
            operator = Staff(self.ctx.actor, title="Bench controller")
            validator = Staff(self.ctx.actor, title="Automated validation (read-back verification)")
            cert_ids = []
            for medium_id, result in results:
                medium = s.get(StorageMedium, medium_id)
                assert medium is not None
                cert = certify_medium(
                    s,
                    self.ctx.settings,
                    device=device,
                    medium=medium,
                    result=result,
                    operator=operator,
                    validator=validator,
                    destination=Destination(job.destination),
                )
                cert_ids.append(cert.id)
            seq = self._transition(s, job, Event.SANITISED, certificates=cert_ids)
            self._end_step(s, step_id, StepStatus.SUCCEEDED, f"{len(cert_ids)} medium(s) erased and certified", seq)

    def _open_erase_round(self, step_id: int, name: str) -> tuple[list[tuple[int, str, str]], int]:
        """Match recorded media to what is attached, then open the erase round (one commit)."""
        with session_scope(self.ctx.engine) as s:
            job = jobs.ensure_owned(s, self.job_id, self.ctx.run_id)
            self._begin(s, job, step_id, name)
            slot = s.get(Slot, job.slot_id)
            if slot is None or slot.attachment_id != job.attachment_id or not slot.attached_node:
                raise StepFailed("the device is no longer in its slot")
            device = jobs.device_of(s, job)
            media = s.exec(select(StorageMedium).where(StorageMedium.device_id == device.id)).all()
            if not media and slot.attached_serial:
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
            missing = [m.serial for m in media if m.serial != slot.attached_serial]
            if missing:
                raise StepFailed(f"media {', '.join(missing)} recorded on the device are not attached in {slot.code}")
            seq = self._transition(s, job, Event.START_SANITISE, media=[m.serial for m in media])
            step = s.get(JobStep, step_id)
            assert step is not None
            step.custody_seq = seq
            s.add(step)
            jobs.log(s, self.job_id, f"erase round {seq} opened for {', '.join(m.serial for m in media)}")
            return [(m.id or 0, m.serial, slot.attached_node) for m in media], seq

    def _provision(self, step_id: int, name: str) -> None:
        with session_scope(self.ctx.engine) as s:
            job = jobs.ensure_owned(s, self.job_id, self.ctx.run_id)
            self._begin(s, job, step_id, name)
            device = jobs.device_of(s, job)
            slot = s.get(Slot, job.slot_id)
            request = ProvisionRequest(
                job_id=self.job_id,
                device_serial=device.serial,
                kind=device.kind,
                role=device.role,
                profile=job.profile,
                slot=slot.code if slot else "",
                cancel=self.cancel,
            )
            seq = self._transition(s, job, Event.START_PROVISION, provisioner=self.ctx.provisioner.name)
            step = s.get(JobStep, step_id)
            assert step is not None
            step.custody_seq = seq
            s.add(step)
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
            seq = self._transition(
                s,
                job,
                Event.PROVISIONED,
                provisioner=self.ctx.provisioner.name,
                noop=outcome.noop,
                detail=outcome.detail,
            )
            self._end_step(s, step_id, StepStatus.NOOP if outcome.noop else StepStatus.SUCCEEDED, outcome.detail, seq)

    def _quarantine(self, step_id: int, name: str) -> None:
        with session_scope(self.ctx.engine) as s:
            job = jobs.ensure_owned(s, self.job_id, self.ctx.run_id)
            self._begin(s, job, step_id, name)
            slot = s.get(Slot, job.slot_id)
            assert slot is not None
            if not job.device_serial:
                raise StepFailed("the port reported no serial number: the device cannot be booked in")
            device = receive_device(
                s,
                serial=job.device_serial,
                kind=slot.default_kind,
                actor=self.ctx.actor,
                from_custodian="unknown",
                location=slot.code,
            )
            change_state(
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
            seq = jobs.custody_seq_of(s, device.id or 0)
            self._end_step(s, step_id, StepStatus.SUCCEEDED, "booked in and quarantined for a technician", seq)

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
        now = time.monotonic()
        if now - self._last_db < PROGRESS_DB_INTERVAL:
            return
        self._last_db = now
        try:
            with session_scope(self.ctx.engine) as s:
                jobs.set_progress(s, self.job_id, self.ctx.run_id, step=f"{step} ({p.phase})", progress=overall)
        except Exception as exc:  # progress is cosmetic: never let it break an erase
            log.debug("progress update for job %s skipped: %s", self.job_id, exc)


def _failure_action(s: Session, job: Job) -> str:
    step = s.exec(select(JobStep).where(JobStep.job_id == job.id, JobStep.status == StepStatus.RUNNING)).first()
    if step is not None and step.kind == Step.PROVISION:
        return "retry provisioning, or check the provisioning log"
    return "retry (restarts the wipe from the beginning) or send the device for destruction"
