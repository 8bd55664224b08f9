"""The line's tablet steps (``pipeline_rules.TABLET_STEPS``).

* identify: the platform's tools read the tablet in its slot (outside any transaction); a locked,
  untrusted or unreachable tablet holds the job with the technician's action, and the device keeps
  its state; a tablet that reads as another device fails the step;
* sanitise: ``erase_step.py``'s round, whose erase for a tablet is :func:`tablet_erase` (the
  platform reset) and whose entries carry the before and the during/after evidence;
* enrol: the device-management enrolment profile assigned through the adapter (recorded on the
  provisioning entries), in place of Ansible.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import update
from sqlmodel import select

from factory.intake.models import ServiceEndpoint
from factory.kernel.errors import FactoryError
from factory.kernel.lifecycle.states import Event
from factory.kernel.models.device import MediaType, StorageMedium
from factory.line import jobs
from factory.line.errors import StepFailed, StepHeld
from factory.line.job_steps import vehicle_of_build
from factory.line.models import JobStep, Slot, StepStatus
from factory.line.pipeline_rules import TABLET_STEP_NAMES, Step
from factory.line.tablet_slots import tablet_of
from factory.tablets.service import TabletBench, closing_record, reset_evidence
from hardware_drivers.remote_commands import RemoteCommandError, SshCommandRunner
from hardware_drivers.ssh import PinnedHostKey
from hardware_drivers.ssh_errors import InvalidPin
from hardware_drivers.ssh_transport import SshTarget
from hardware_drivers.tablet_usb import Platform
from imaging.errors import EraseFailure, ImagingError, PlanError
from imaging.remote_erase import erase_remote
from imaging.result import CommandRecord, EraseResult, Level
from imaging.tablets.device_management import ServiceRefused
from imaging.tablets.failure import FAILED, ResetFailure, from_plan
from imaging.tablets.identity import TabletProbe
from imaging.tablets.methods import DiskErase, Overwrite
from imaging.tablets.reset import run_reset

if TYPE_CHECKING:
    from factory.line.job_runner import JobRunner

NO_TABLET_BENCH = "no tablet settings on this line"
NO_TABLET_BENCH_ACTION = "start the agent with --tablets FILE (device-management services), then retry"
_STEP = JobStep.__table__  # type: ignore[attr-defined]
SANITISE_STEP = TABLET_STEP_NAMES[Step.SANITISE]
# Recorded media a Windows tablet's service environment shows as NVMe / SATA disks (not its eMMC).
DISK_MEDIA = frozenset({MediaType.NVME.value, MediaType.SATA_SSD.value, MediaType.HDD.value})

# What the identify step read, for the later steps of the same job (one runner per job).
_probes: weakref.WeakKeyDictionary[JobRunner, TabletProbe] = weakref.WeakKeyDictionary()
_closing: weakref.WeakKeyDictionary[JobRunner, dict[str, Any]] = weakref.WeakKeyDictionary()


def _bench(runner: JobRunner) -> TabletBench:
    bench = runner.ctx.tablets
    if bench is None:
        raise StepHeld(NO_TABLET_BENCH, NO_TABLET_BENCH_ACTION)
    return bench


def identify_tablet(runner: JobRunner, step_id: int, name: str) -> None:
    """:raises StepHeld: no tablet settings, or the tablet cannot be read (the action says why).
    :raises StepFailed: the tablet left its slot, or reads as another device."""
    bench = _bench(runner)
    with runner.scope(starting=name) as (s, job):
        started = runner.begin(s, job, name)
        slot = s.get(Slot, job.slot_id)
        tablet = tablet_of(slot.attached_node if slot else None)
        if slot is None or slot.attachment_id != job.attachment_id or tablet is None or not slot.attached_serial:
            raise StepFailed("the tablet is no longer in its slot")
        device = jobs.device_of(s, job)
        media = s.exec(select(StorageMedium).where(StorageMedium.device_id == device.id)).all()
        known = {device.serial, *(m.serial for m in media)}
        # A Windows tablet's NVMe / SATA media are found among its service environment's disks by serial.
        disks = [m.serial for m in media if m.media_type in DISK_MEDIA] if tablet[0] is Platform.WINDOWS else []
        ref = slot.attached_serial
        windows = tablet[0] is Platform.WINDOWS and not bench.windows_here
        endpoint = s.exec(select(ServiceEndpoint).where(ServiceEndpoint.device_id == device.id)).first()
    if windows:
        bench.open_channel(ref, _service_environment(runner, endpoint))
    begun = time.monotonic()
    try:
        probe = bench.identify(tablet[0].value, ref, disks)
    except RemoteCommandError as exc:  # the Windows tablet's service environment did not answer
        bench.close_channel(ref)
        raise StepHeld(f"service environment unreachable: {exc}", "check it booted the bench stick; re-insert") from exc
    finally:
        runner.work += time.monotonic() - begun
    if not probe.identified:
        bench.close_channel(ref)
        raise StepHeld(probe.problem or "the tablet could not be read", probe.action or "re-insert the tablet")
    if not known & ({probe.serial, probe.udid} - {None}):
        bench.close_channel(ref)
        raise StepFailed(f"the tablet reads as {probe.serial or probe.udid}: not device {device.serial}")
    _probes[runner] = probe
    lock = f"; {probe.lock}" if probe.lock else ""
    outcome = f"{probe.platform} {probe.model or ''} serial {probe.serial}, {probe.encryption}{lock}".replace("  ", " ")
    with runner.scope() as (s, job):
        runner.logs.add(runner.job_id, f"tablet read: {probe.evidence()}")
        ended = runner.end_step(s, job, name, StepStatus.SUCCEEDED, outcome)
        s.execute(update(_STEP).where(_STEP.c.id == step_id).values(**{**started, **ended}))


def _service_environment(runner: JobRunner, endpoint: ServiceEndpoint | None) -> SshCommandRunner[CommandRecord]:
    """The SSH channel to a Windows tablet booted from the bench stick (its eMMC is there, not here).

    :raises StepHeld: no endpoint recorded for it, or no client key on this line.
    """
    if endpoint is None:
        raise StepHeld(
            "no service-environment endpoint recorded for this Windows tablet",
            "boot it from the bench stick so the service environment enrols, then re-insert it",
        )
    key = runner.ctx.remote.client_key
    if key is None:
        raise StepHeld("no SSH client key for the service environment", "set [service_env] ssh_private_key")
    try:
        pin = PinnedHostKey.parse(endpoint.host_key)
    except InvalidPin as exc:
        raise StepFailed(f"pinned host key unusable: {exc}") from exc
    target = SshTarget(endpoint.address, endpoint.port, endpoint.username, key, pin)
    return SshCommandRunner(target, record_factory=CommandRecord)


def tablet_erase(runner: JobRunner) -> Callable[..., EraseResult] | None:
    """The erase of the sanitise step for a tablet identified in this job; None for anything else."""
    probe = _probes.get(runner)
    bench = runner.ctx.tablets
    if probe is None or bench is None:
        return None

    pending = {disk.path for disk in probe.disks}  # a Windows tablet's disks not yet erased
    erased: list[tuple[str, dict[str, Any]]] = []  # (path, evidence) of each medium erased so far

    def erase(path: str, *, level: Level, cancel: Any = None, **engine: Any) -> EraseResult:
        target = _one_disk(probe, path)
        reset = replace(
            bench.reset_context(target, cancel),
            overwrite=_overwrite(runner, bench, target, cancel, engine),
            disk_erase=_disk_erase(bench, target, level, cancel, engine),
        )
        pending.discard(path)
        report = None
        try:
            report = run_reset(target, reset, level=level, reprobe=bench.reprobe(target, cancel))
        except PlanError as exc:  # planned nothing: not encrypted, no service, no method
            raise _failed(runner, probe, from_plan(probe, exc), {"method": None}) from exc
        except ImagingError as exc:  # the engine refused the eMMC before writing (busy, unreadable)
            raise _failed(runner, probe, ResetFailure("reset", FAILED, str(exc)), {"method": None}) from exc
        except RemoteCommandError as exc:  # the channel to a Windows tablet dropped: outcome unknown
            raise EraseFailure(f"service environment lost during the erase: {exc}") from exc
        finally:
            # A Windows tablet's SSH channel: done with it after its last disk, or once one failed.
            if not pending or report is None or report.failure is not None:
                bench.close_channel(probe.serial or probe.ref)
        evidence = reset_evidence(target, report)
        if report.failure is not None:
            raise _failed(runner, target, report.failure, evidence)
        erased.append((path, evidence))
        _closing[runner] = closing_record(erased)
        return report.result

    return erase


def _one_disk(probe: TabletProbe, path: str) -> TabletProbe:
    """The tablet with only the disk at ``path`` (the sanitise step erases each recorded medium in
    turn); a tablet without NVMe / SATA disks as it is."""
    if not probe.disks:
        return probe
    return replace(probe, ref=path, disks=tuple(disk for disk in probe.disks if disk.path == path))


def tablet_media(runner: JobRunner) -> dict[str, str]:
    """Where each recorded NVMe / SATA medium of the tablet identified in this job is in its service
    environment (serial -> path there), for the sanitise step; empty for any other tablet or device."""
    probe = _probes.get(runner)
    return {disk.medium: disk.path for disk in probe.disks} if probe is not None else {}


def _disk_erase(
    bench: TabletBench, probe: TabletProbe, level: Level, cancel: Any, engine: Mapping[str, Any]
) -> DiskErase | None:
    """The laptops' remote erase of one of the tablet's disks in its service environment, over SSH."""
    remote = bench.service_environment(probe) if probe.disks else None
    if remote is None:
        return None

    def erase_there(path: str) -> EraseResult:
        label = f"{probe.platform} tablet {probe.serial or probe.ref} in its service environment"
        return erase_remote(remote, path, level=level, cancel=cancel, remote_label=label, **engine)

    return erase_there


def _failed(runner: JobRunner, probe: TabletProbe, failure: ResetFailure, evidence: dict[str, Any]) -> StepFailed:
    """The sanitise step's failure, structured: the board's reason and next action, and for the
    failed round's entry what the reset found out (the step, stage, kind, last exchange)."""
    evidence = {**evidence, "failure": {"step": SANITISE_STEP, **failure.evidence()}}
    _closing[runner] = evidence
    return StepFailed(
        f"{probe.platform} tablet {probe.serial or probe.ref}: {failure.reason}", failure.action, evidence
    )


def _overwrite(
    runner: JobRunner, bench: TabletBench, probe: TabletProbe, cancel: Any, engine: Mapping[str, Any]
) -> Overwrite | None:
    """The erase engine's overwrite of the tablet's eMMC, through the same erase (and verification)
    as a disk: where this bench exposes the eMMC as a block device, as a disk in a dock; else over
    SSH in the service environment, as a laptop's disk (the remote erase); None elsewhere."""
    if probe.emmc is None:  # an NVMe / SATA disk is erased by its own method (``_disk_erase``)
        return None
    node = bench.emmc_node(probe)
    if node is not None:

        def overwrite_here(level: Level) -> EraseResult:
            return runner.ctx.erase(node, level=level, cancel=cancel, **engine)

        return overwrite_here
    remote = bench.service_environment(probe)
    if remote is None:
        return None

    def overwrite_there(level: Level) -> EraseResult:
        label = f"{probe.platform} tablet {probe.serial or probe.ref} in its service environment"
        return erase_remote(remote, probe.ref, level=level, cancel=cancel, remote_label=label, **engine)

    return overwrite_there


def before_evidence(runner: JobRunner) -> dict[str, Any]:
    """What the round's opening entry records of a tablet (nothing for a disk)."""
    probe = _probes.get(runner)
    return {"tablet": probe.evidence()} if probe is not None else {}


def closing_evidence(runner: JobRunner) -> Mapping[str, Any]:
    return _closing.get(runner, {})


def enrol(runner: JobRunner, step_id: int, name: str) -> None:
    """:raises StepHeld: no tablet settings, or a vehicle tablet with no vehicle.
    :raises StepFailed: the service refused the profile."""
    bench = _bench(runner)
    probe = _probes.get(runner)
    if probe is None:
        raise StepFailed("the tablet was not identified in this job: retry it")
    with runner.scope(starting=name) as (s, job):
        fleet = vehicle_of_build(s, jobs.device_of(s, job))  # a vehicle tablet with no vehicle is held here
        started = runner.begin(s, job, name)
        vehicle = {"vehicle": fleet} if fleet else {}
        stamp = runner.step_stamp(step_id, **started)
        runner.transition(s, job, Event.START_PROVISION, step=stamp, provisioner=name, **vehicle)
        profile = bench.profiles.get(job.profile, job.profile.replace("/", "-"))
    begun = time.monotonic()
    try:
        service, reference = bench.enrol(probe, profile)
    except (ServiceRefused, FactoryError) as exc:
        raise StepFailed(f"enrolment refused: {exc}") from exc
    finally:
        runner.work += time.monotonic() - begun
    enrolment = {"service": service, "profile": profile, "reference": reference}
    with runner.scope() as (s, job):
        ended = runner.end_step(s, job, name, StepStatus.SUCCEEDED, f"{service}: profile {profile} assigned")
        stamp = runner.step_stamp(step_id, **ended)
        runner.transition(s, job, Event.PROVISIONED, step=stamp, provisioner=name, enrolment=enrolment, **vehicle)


__all__ = ["before_evidence", "closing_evidence", "enrol", "identify_tablet", "tablet_erase", "tablet_media"]
