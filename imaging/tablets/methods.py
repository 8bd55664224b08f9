"""Tablet sanitisation methods, asked in order like the disk methods: each answers "unsupported
here: <why>" or the level it reaches, and the planner takes the first that can serve.

* device-management wipe (iPad: Apple MDM ``EraseDevice``; Android: Android Management API /
  Intune ``wipe``): a cryptographic erase by the platform's own reset, Purge under NIST SP 800-88
  Rev. 2 and the NCSC's guidance **only** for a tablet encrypted from first use;
* a supervised iPad's erase over USB (pymobiledevice3, where the bench has it): the same reset, with
  no acknowledgement, so the iPad read back unactivated after it is the only confirmation;
* Android reset over USB by the site's device-owner app (tablets the site owns as device owner);
* eMMC secure erase + sanitize (Windows and rugged tablets): Clear per IEEE 2883-2022;
* else, where the bench exposes the eMMC as a block device, the erase engine's overwrite of it (the
  same erase and verification as a disk's): Clear, with the residual risk of the blocks the eMMC's
  controller keeps out of the host's reach;
* a Windows tablet's NVMe or SATA disk, in its service environment over SSH: the laptops' remote
  erase (``imaging.remote_erase``), which takes the strongest method the disk supports (NVMe
  sanitize / format with crypto erase, ATA sanitize / secure erase) else the overwrite (Clear, with
  the residual risk stated), and verifies it by reading back there.

A tablet that is not encrypted gets no cryptographic erase: every platform-reset method refuses
it, the planner finds nothing, and the round fails with that reason (re-sanitise or destroy).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from imaging.commands import TIMED_OUT, CommandRunner
from imaging.errors import EraseFailure, PlanError
from imaging.methods.base import LEVEL_RANK, Support, tail
from imaging.plan import Plan, make_plan
from imaging.remote_erase import REMOTE_OVERWRITE
from imaging.result import EraseResult, Level, Technique
from imaging.tablets import android, emmc, ios, usb_erase
from imaging.tablets import failure as kinds
from imaging.tablets.device_management import (
    AuditRecord,
    DeviceManagement,
    WipeCommand,
    WipeRefused,
    WipeState,
    WipeWait,
    wait_for_wipe,
)
from imaging.tablets.failure import ResetFailed
from imaging.tablets.identity import ANDROID, IPADOS, WINDOWS, TabletProbe

CRYPTO_RESET = "cryptographic erase (platform reset)"
DPC_WIPE_ACTION = "uk.police.factory.action.WIPE"
USB_RESET_TIMEOUT = 60.0
# The erase engine's overwrite of the tablet's eMMC where the bench exposes it as a block device,
# bound by the caller to its path, verification and cancel (the disks' path): level -> its result.
Overwrite = Callable[[Level], EraseResult]
# The laptops' remote erase of one disk in the tablet's service environment, bound by the caller to
# its channel, level, verification and cancel: the disk's path there -> the engine's result.
DiskErase = Callable[[str], EraseResult]


@dataclass
class ResetContext:
    """What the methods may use: the command seam, the services, and the site's device-owner app."""

    runner: CommandRunner
    management: Mapping[str, DeviceManagement] = field(default_factory=dict)  # platform -> adapter
    managed_id: str | None = None  # the service's id for this tablet (UDID for Apple MDM)
    site_dpc: str | None = None  # package of the site's device-owner app (Android USB reset)
    wait: WipeWait = field(default_factory=WipeWait)
    overwrite: Overwrite | None = None  # None: the eMMC is not a block device on this bench
    usb_erase_tool: bool = False  # pymobiledevice3 is installed on this bench (iPad erase over USB)
    disk_erase: DiskErase | None = None  # None: no SSH channel to the tablet's service environment

    @property
    def cancel(self) -> threading.Event:
        return self.wait.cancel or threading.Event()


@dataclass(frozen=True)
class ResetOutcome:
    """What a method did: the notes, and the service's command and audit where one was used."""

    notes: tuple[str, ...]
    path: str  # "device management (<service>)", "usb (device owner)", "mmc-utils"
    command: WipeCommand | None = None
    acknowledgement: str | None = None
    audit: AuditRecord | None = None
    erased: EraseResult | None = None  # the erase engine's own result, where it did the erase


class TabletMethod(ABC):
    name: str
    technique: Technique
    label: str  # the method as the certificate names it
    # The platforms whose tablet is read again after this method (the caller's reprobe), and whether
    # that read is the only confirmation there is (no service acknowledges a reset over USB): then a
    # tablet not read back is a failed check, never a skipped one.
    read_back: frozenset[str] = frozenset()
    read_back_required: bool = False

    @abstractmethod
    def supports(self, probe: TabletProbe, ctx: ResetContext) -> Support: ...

    @abstractmethod
    def execute(self, probe: TabletProbe, ctx: ResetContext) -> ResetOutcome:
        """Run it to a confirmed end; raise ``EraseFailure`` for anything short of that."""


def _not_encrypted(probe: TabletProbe) -> Support | None:
    if probe.encrypted is True:
        return None
    state = "not encrypted" if probe.encrypted is False else "encryption state unknown"
    return Support.no(f"{state} ({probe.encryption}): a reset of it is not a cryptographic erase")


class ManagementWipe(TabletMethod):
    name = "device-management-wipe"
    technique = Technique.CRYPTO_ERASE
    label = CRYPTO_RESET
    read_back = frozenset({IPADOS})  # an erased iPad answers unpaired; a wiped Android tablet has adb off

    def supports(self, probe: TabletProbe, ctx: ResetContext) -> Support:
        if probe.platform not in (IPADOS, ANDROID):
            return Support.no(f"no platform reset for {probe.platform} tablets")
        if probe.platform not in ctx.management:
            return Support.no(f"no device-management service configured for {probe.platform}")
        if not ctx.managed_id:
            return Support.no("the tablet is not enrolled in the device-management service")
        return _not_encrypted(probe) or Support.yes(Level.PURGE, "NIST SP 800-88 Rev. 2 crypto erase by the platform")

    def execute(self, probe: TabletProbe, ctx: ResetContext) -> ResetOutcome:
        dm = ctx.management[probe.platform].bound(ctx.runner)  # every exchange on the result
        assert ctx.managed_id is not None
        try:
            command = dm.send_wipe(ctx.managed_id)
        except WipeRefused as exc:
            kind = kinds.TIMED_OUT if "request timed out" in exc.reason else kinds.REFUSED
            raise ResetFailed(f"wipe refused: {exc.reason}", kind, service={"service": dm.service}) from exc
        status = wait_for_wipe(dm, command, ctx.wait)
        if status.state is not WipeState.ACKNOWLEDGED:
            residual = ("the wipe may still run later: the tablet's state is unknown",)
            service = {"service": dm.service, "command_id": command.command_id, "state": str(status.state)}
            raise ResetFailed(
                f"wipe {command.command_id} {status.state}: {status.detail}",
                _unacknowledged(status.state, status.detail),
                residual=residual,
                service={**service, "detail": status.detail},
            )
        audit = dm.read_audit(command)
        notes = (f"{dm.service}: wipe {command.command_id} {status.state}", f"audit: {audit.state}")
        return ResetOutcome(notes, f"device management ({dm.service})", command, status.detail, audit)


def _unacknowledged(state: WipeState, detail: str) -> str:
    """The kind of an unacknowledged wipe: timed out, the device locked (Lost Mode), or not acknowledged."""
    if state is WipeState.TIMED_OUT:
        return kinds.TIMED_OUT
    return kinds.LOCKED if "lost mode" in detail.lower() or "locked" in detail.lower() else kinds.NOT_ACKNOWLEDGED


def _tool_kind(returncode: int) -> str:
    return kinds.TIMED_OUT if returncode == TIMED_OUT else kinds.REFUSED


class UsbDeviceOwnerReset(TabletMethod):
    name = "usb-device-owner-reset"
    technique = Technique.CRYPTO_ERASE
    label = CRYPTO_RESET
    read_back = frozenset({ANDROID})
    read_back_required = True  # the tablet itself, back on adb, is the only witness of its reset

    def supports(self, probe: TabletProbe, ctx: ResetContext) -> Support:
        if probe.platform != ANDROID:
            return Support.no("a reset over USB needs the site's device-owner app (Android)")
        if not ctx.site_dpc or probe.device_owner != ctx.site_dpc:
            return Support.no(f"device owner is {probe.device_owner or 'none'}, not the site's app")
        return _not_encrypted(probe) or Support.yes(Level.PURGE, "reset by the site's device-owner app over USB")

    def execute(self, probe: TabletProbe, ctx: ResetContext) -> ResetOutcome:
        component = f"{ctx.site_dpc}/.WipeReceiver"
        argv = android.adb(probe.ref, "shell", "am", "broadcast", "-a", DPC_WIPE_ACTION, "-n", component)
        record = ctx.runner.run(argv, USB_RESET_TIMEOUT)
        if record.returncode != 0 or "Broadcast completed: result=-1" not in record.stdout:
            raise ResetFailed(f"the device-owner app refused the reset: {tail(record)}", _tool_kind(record.returncode))
        gone = self._left_adb(probe, ctx)
        if not gone:
            raise ResetFailed(
                "the tablet accepted the reset but never restarted into it: outcome unknown",
                kinds.TIMED_OUT,
                residual=("the reset may not have run",),
            )
        return ResetOutcome(
            ("device-owner app accepted the reset", "the tablet left adb to reset"),
            "usb (device owner)",
            acknowledgement="Broadcast completed: result=-1",
        )

    def _left_adb(self, probe: TabletProbe, ctx: ResetContext) -> bool:
        """A reset tablet restarts and loses its adb keys: it drops off ``adb devices``."""

        def gone() -> bool:
            listed, record = android.list_devices(ctx.runner)
            return record.returncode == 0 and listed.get(probe.ref) is None

        return _left_the_bus(ctx, gone)


def _off_usbmux(runner: CommandRunner, udid: str) -> bool:
    """An erasing iPad restarts: usbmuxd stops listing it (a list that could not be read proves nothing)."""
    listed, _record = ios.listed_udids(runner)
    return listed is not None and udid not in listed


def _left_the_bus(ctx: ResetContext, gone: Callable[[], bool]) -> bool:
    """Polls ``gone`` (the tablet no longer listed by its tool) until it is, the wait's deadline, or cancel."""
    deadline_polls = max(1, int(ctx.wait.deadline_seconds // max(ctx.wait.poll_interval, 0.001)))
    for _ in range(deadline_polls):
        if gone():
            return True
        if ctx.cancel.wait(ctx.wait.poll_interval):
            return False
    return False


class UsbSupervisedErase(TabletMethod):
    """A supervised iPad erased over USB (``com.apple.mobile.MCInstall`` ``EraseDevice``, sent by
    pymobiledevice3): for a supervised iPad the MDM does not reach. No service acknowledges it and
    the iPad drops the connection as it erases, so the iPad read back after its restart (same UDID,
    unactivated) is the only witness: a tablet not read back fails the round."""

    name = "usb-supervised-erase"
    technique = Technique.CRYPTO_ERASE
    label = CRYPTO_RESET
    read_back = frozenset({IPADOS})
    read_back_required = True

    def supports(self, probe: TabletProbe, ctx: ResetContext) -> Support:
        if probe.platform != IPADOS:
            return Support.no("an erase over USB by MCInstall is for iPads")
        if probe.supervised is not True:
            return Support.no("not supervised: an iPad is erased over USB only when the site supervises it")
        if not ctx.usb_erase_tool:
            return Support.no(f"{usb_erase.TOOL} not installed on this bench")
        return _not_encrypted(probe) or Support.yes(Level.PURGE, "supervised iPad erased over USB (MCInstall)")

    def execute(self, probe: TabletProbe, ctx: ResetContext) -> ResetOutcome:
        record = ctx.runner.run(usb_erase.erase_argv(probe.udid or probe.ref), usb_erase.ERASE_TIMEOUT)
        request = usb_erase.parse_erase(record)
        if not request.sent:
            kind = kinds.TIMED_OUT if request.timed_out else kinds.LOCKED if request.locked else kinds.REFUSED
            residual = ("the erase may still run: the iPad's state is unknown",) if request.timed_out else ()
            raise ResetFailed(f"the erase over USB was not sent: {request.reason}", kind, residual=residual)
        if not _left_the_bus(ctx, lambda: _off_usbmux(ctx.runner, probe.udid or probe.ref)):
            raise ResetFailed(
                "the iPad took the erase request but never restarted into it: outcome unknown",
                kinds.TIMED_OUT,
                residual=("the erase may not have run",),
            )
        notes = (
            f"{usb_erase.TOOL}: EraseDevice sent over USB ({request.reason}); no acknowledgement by design",
            "the iPad left usbmux to erase",
        )
        return ResetOutcome(notes, "usb (supervised iPad, MCInstall EraseDevice)")


class EmmcSecureErase(TabletMethod):
    name = "emmc-secure-erase-sanitize"
    technique = Technique.BLOCK_ERASE
    label = "eMMC secure erase + sanitize"

    def supports(self, probe: TabletProbe, ctx: ResetContext) -> Support:
        ext = probe.emmc
        if probe.platform != WINDOWS or ext is None:
            return Support.no("not an eMMC tablet")
        if not (ext.secure_erase and ext.sanitize):
            return Support.no(f"SEC_FEATURE_SUPPORT {ext.sec_feature_support:#04x} lacks secure erase or sanitize")
        return Support.yes(Level.CLEAR, "IEEE 2883-2022: eMMC erase + sanitize is Clear")

    def execute(self, probe: TabletProbe, ctx: ResetContext) -> ResetOutcome:
        assert probe.emmc is not None
        erased = emmc.secure_erase(ctx.runner, probe.ref, probe.emmc)
        if not emmc.erase_succeeded(erased):
            raise ResetFailed(f"secure erase failed: {emmc.failure(erased)}", _tool_kind(erased.returncode))
        sanitized = emmc.sanitize(ctx.runner, probe.ref)
        if sanitized.returncode != 0:
            residual = ("unmapped blocks may remain",)
            reason = f"sanitize failed: {emmc.failure(sanitized)}"
            raise ResetFailed(reason, _tool_kind(sanitized.returncode), residual=residual)
        notes = (f"secure erase of sectors 0..{probe.emmc.last_sector:#x} succeeded", "sanitize completed")
        return ResetOutcome(notes, "mmc-utils")


class EmmcOverwrite(TabletMethod):
    """The fallback for an eMMC without secure erase or sanitize: the erase engine overwrites and
    verifies it as it does a disk. Clear only: the host reaches the addressable sectors, not the
    blocks the eMMC's controller has remapped or holds in reserve."""

    name = "emmc-overwrite"
    technique = Technique.OVERWRITE
    label = "overwrite (eMMC without sanitize)"

    def supports(self, probe: TabletProbe, ctx: ResetContext) -> Support:
        if probe.platform != WINDOWS or probe.emmc is None:
            return Support.no("not an eMMC tablet")
        if ctx.overwrite is None:
            return Support.no("the eMMC is not exposed to this bench as a block device")
        return Support.yes(Level.CLEAR, "IEEE 2883-2022: an overwrite of an eMMC is Clear")

    def execute(self, probe: TabletProbe, ctx: ResetContext) -> ResetOutcome:
        assert ctx.overwrite is not None
        result = ctx.overwrite(Level.CLEAR)
        if not result.ok:
            raise EraseFailure(f"overwrite failed: {result.failure_reason}", residual=result.residual_risk)
        notes = (f"{result.bytes_written} bytes overwritten by the erase engine ({result.method})",)
        return ResetOutcome(notes, "erase engine (overwrite)", acknowledgement="overwrite verified", erased=result)


class ServiceEnvironmentDiskErase(TabletMethod):
    """A Windows tablet's NVMe or SATA disk, erased in its service environment over SSH by the
    laptops' remote erase: the engine plans the strongest method the disk supports (firmware first,
    the keyed overwrite last), runs it there, refuses a firmware method the drive rejects for the
    next one, and reads the disk back there. Its result is the engine's, certified per medium as a
    laptop's disk is; one disk per execution (the sanitise step erases each recorded medium)."""

    name = "service-environment-disk-erase"
    technique = Technique.BLOCK_ERASE  # what a failure names; a result names the engine's technique
    label = "remote erase of the tablet's disk (service environment)"

    def supports(self, probe: TabletProbe, ctx: ResetContext) -> Support:
        if probe.platform != WINDOWS or not probe.disks:
            return Support.no("no NVMe or SATA disk of the tablet found in its service environment")
        if ctx.disk_erase is None:
            return Support.no("the tablet's service environment is not reached over SSH")
        plans: list[Plan] = []
        for disk in probe.disks:
            try:
                plans.append(make_plan(disk.probe, Level.CLEAR, "auto", overwrite=REMOTE_OVERWRITE))
            except PlanError as exc:
                return Support.no(str(exc))
        weakest = min(plans, key=lambda plan: LEVEL_RANK[plan.level])
        methods = ", ".join(f"{d.path}: {p.method.name} ({p.level})" for d, p in zip(probe.disks, plans, strict=True))
        return Support.yes(weakest.level, f"the laptops' remote erase over SSH: {methods}")

    def execute(self, probe: TabletProbe, ctx: ResetContext) -> ResetOutcome:
        assert ctx.disk_erase is not None
        if len(probe.disks) != 1:
            raise EraseFailure(f"one disk per erase, not {len(probe.disks)}: nothing was erased")
        [disk] = probe.disks
        result = ctx.disk_erase(disk.path)
        if not result.ok:
            reason = f"{disk.probe.media_type} {disk.medium} ({result.method}): {result.failure_reason}"
            raise EraseFailure(reason, residual=result.residual_risk)
        notes = (f"{disk.medium} at {disk.path} erased by {result.method} ({result.level_achieved}) and verified",)
        path = "erase engine (remote erase over SSH)"
        return ResetOutcome(notes, path, acknowledgement="erase verified", erased=result)


def tablet_methods() -> list[TabletMethod]:
    # The MDM first: its erase is acknowledged and audited (and returns the iPad to service); the
    # erase over USB is for a supervised iPad the MDM does not reach.
    return [
        ManagementWipe(),
        UsbSupervisedErase(),
        UsbDeviceOwnerReset(),
        EmmcSecureErase(),
        EmmcOverwrite(),
        ServiceEnvironmentDiskErase(),
    ]


@dataclass(frozen=True)
class TabletPlan:
    method: TabletMethod
    level: Level
    considered: tuple[tuple[str, str], ...]
    note: str


def plan_reset(probe: TabletProbe, ctx: ResetContext, level: Level = Level.CLEAR) -> TabletPlan:
    """The first method that reaches ``level``.

    :raises PlanError: the tablet was not identified, or no method serves it (with every reason).
    """
    if not probe.identified:
        raise PlanError(f"tablet {probe.ref} is not identified: {probe.problem}")
    considered: list[tuple[str, str]] = []
    for method in tablet_methods():
        support = method.supports(probe, ctx)
        if not support.ok or support.level is None:
            considered.append((method.name, support.reason))
        elif LEVEL_RANK[support.level] < LEVEL_RANK[level]:
            considered.append((method.name, f"achieves {support.level} only"))
        else:
            return TabletPlan(method, support.level, tuple(considered), support.reason)
    reasons = "; ".join(f"{name}: {why}" for name, why in considered)
    raise PlanError(f"no sanitisation method for {probe.platform} tablet {probe.serial or probe.ref}: {reasons}")
