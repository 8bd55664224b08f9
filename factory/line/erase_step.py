"""The job runner's sanitise step: open the erase round, erase every medium, certify.

A dock slot's disk is erased on this host; a switch-port slot's laptop over SSH
(``remote_media.py``). The round itself is the sanitisation service's (``open_round``,
``certify_round``), run inside the runner's leased transactions:

* opening the round (``start_sanitise``) commits with the step marked running;
* the engine erases every medium outside any transaction;
* the certificates for every medium and ``sanitised`` commit together, after re-checking that
  this agent still owns the job and that the device's erase round is still the one it opened.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from sqlmodel import Session, select

from factory.kernel.models.device import MediaType, StorageMedium
from factory.line import jobs
from factory.line.errors import StepFailed
from factory.line.models import Job, Slot, StepStatus
from factory.line.remote_media import RemoteMedia, RemoteMediaError, connect_for_job
from factory.line.tablet_steps import before_evidence, closing_evidence, tablet_erase, tablet_media
from factory.sanitisation.service import EraseRound, RoundOrigin, certify_round, job_signatories, open_round
from imaging.certificate import Destination
from imaging.errors import ImagingError
from imaging.result import EraseResult

if TYPE_CHECKING:
    from factory.line.job_runner import JobRunner


def sanitise(runner: JobRunner, step_id: int, name: str) -> None:
    """Run the sanitise step of ``runner``'s job (its step row ``step_id``, shown as ``name``).

    :raises StepFailed: the device left its slot, a medium is missing or failed, the channel to a
        remote laptop failed, or the job was stopped before certification.
    """
    try:
        remote = connect_for_job(runner.ctx.engine, runner.job_id, runner.ctx.remote) if runner.on_switch_port else None
    except RemoteMediaError as exc:
        raise StepFailed(exc.reason) from exc
    try:
        _Erase(runner, remote).run(step_id, name)
    finally:
        if remote is not None:
            remote.close()


class _Erase:
    def __init__(self, runner: JobRunner, remote: RemoteMedia | None) -> None:
        self.runner = runner
        self.remote = remote  # the laptop's disks over SSH while a switch-port slot erases

    def run(self, step_id: int, name: str) -> None:
        runner = self.runner
        round_, targets = self._open(step_id, name)
        erase = self.remote.erase if self.remote is not None else tablet_erase(runner) or runner.ctx.erase
        results: list[tuple[str, EraseResult]] = []
        for n, (serial, path) in enumerate(targets):
            started = time.monotonic()
            try:
                result = erase(
                    path,
                    level=runner.ctx.level,
                    verify=runner.ctx.verify_mode,
                    progress=lambda p, n=n: runner.on_progress(name, p, n, len(targets)),
                    cancel=runner.cancel,
                )
            except (ImagingError, RemoteMediaError) as exc:  # refused, unplannable, or the channel failed
                raise StepFailed(f"medium {serial}: {exc}") from exc
            finally:
                runner.work += time.monotonic() - started
            if not result.ok:
                raise StepFailed(f"medium {serial}: {result.failure_reason}")
            results.append((serial, result))
        runner.live = None
        if runner.cancel.is_set():  # pulled or cancelled after the last byte: do not certify
            raise StepFailed("stopped before certification")
        self._certify(step_id, name, round_, results)

    def _origin(self, s: Session, job: Job) -> RoundOrigin:
        """How this job's erase-round entries name the bench: as every other transition of the job does."""
        code = self.runner.slot_code(s, job)
        ctx = self.runner.ctx
        return RoundOrigin(ctx.actor, ctx.verifier, location=code, evidence={"job": job.id, "slot": code})

    def _certify(self, step_id: int, name: str, round_: EraseRound, results: list[tuple[str, EraseResult]]) -> None:
        """The certificates and ``sanitised`` commit together, after the ownership and round re-checks,
        with the next step's start if there is one (``carried_end.py``), else on their own."""
        runner = self.runner
        evidence = closing_evidence(runner)  # a tablet's wipe command and state after; nothing for disks

        def write(s: Session, job: Job) -> None:
            device = jobs.device_of(s, job)
            signatories = job_signatories(
                job.started_by, job.approved_by, runner.ctx.agent, Destination(job.destination)
            )
            # The step ends (and, as the last, its job) in the transaction that certifies: its row,
            # the job's changes and the log lines are written with the ``sanitised`` entry.
            outcome = f"{len(results)} medium(s) erased and certified"
            ended = runner.end_step(s, job, name, StepStatus.SUCCEEDED, outcome)
            stamps = runner.stamps_for_entry(job, runner.step_stamp(step_id, **ended))
            certify_round(
                s,
                runner.ctx.settings,
                device,
                round_,
                results,
                self._origin(s, job),
                signatories,
                evidence=evidence,
                stamps=stamps,
                rows=runner.log_rows(),
            )

        runner.end_with_next_start(write)

    def _open(self, step_id: int, name: str) -> tuple[EraseRound, list[tuple[str, str]]]:
        """Match recorded media to what is attached, then open the erase round (one commit);
        return it with (serial, path) of every medium to erase."""
        runner = self.runner
        with runner.scope(starting=name) as (s, job):
            started = runner.begin(s, job, name)
            slot = s.get(Slot, job.slot_id)
            on_port = self.remote is not None  # a switch-port slot has no local device node
            if slot is None or slot.attachment_id != job.attachment_id or not (on_port or slot.attached_node):
                raise StepFailed("the device is no longer in its slot")
            device = jobs.device_of(s, job)
            media = list(s.exec(select(StorageMedium).where(StorageMedium.device_id == device.id)).all())
            if not media and slot.attached_serial and not on_port:
                media = [self._record_attached_disk(s, device.id or 0, slot)]
            # A laptop's disks over SSH; a Windows tablet's NVMe / SATA disks there; else the slot's.
            here = tablet_media(runner) or {slot.attached_serial: slot.attached_node}
            where = self.remote.paths if self.remote is not None else here
            missing = [m.serial for m in media if m.serial not in where]
            if missing:
                raise StepFailed(f"media {', '.join(missing)} recorded on the device are not attached in {slot.code}")
            remote = {"remote": self.remote.label} if self.remote is not None else {}  # as the remote path does
            # Written with the round's first entry (it commits with it or not at all; the step row
            # keeps the round's seq), in its one statement on PostgreSQL.
            runner.logs.add(runner.job_id, f"erase round opened for {', '.join(m.serial for m in media)}")
            stamps = (runner.step_stamp(step_id, **started),)
            origin, evidence = self._origin(s, job), {**remote, **before_evidence(runner)}
            round_ = open_round(s, device, media, origin, stamps, rows=runner.log_rows(), **evidence)
            return round_, [(m.serial, where[m.serial]) for m in media]

    def _record_attached_disk(self, s: Session, device_id: int, slot: Slot) -> StorageMedium:
        """A device with no media on record: record the disk attached in the slot as its medium."""
        medium = StorageMedium(
            device_id=device_id,
            serial=slot.attached_serial or "",
            media_type=MediaType.SATA_SSD.value,
            capacity_bytes=slot.attached_size or 0,
        )
        s.add(medium)
        s.flush()
        self.runner.logs.add(
            self.runner.job_id, f"no media recorded: recorded attached disk {slot.attached_serial}", "warn"
        )
        return medium
