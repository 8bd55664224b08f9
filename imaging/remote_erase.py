"""Erase a disk of a remote machine (a laptop booted into the service environment) over its
command channel, producing the very same ``EraseResult`` as a local erase.

The probe, the planner, the method modules, the sample plan and the result assembly are the
engine's own; only the I/O path differs: firmware commands run on the remote through the command
seam, the overwrite uses the remote's own ``dd`` (fed, for the default keyed random pattern, by the
remote's ``openssl`` with the recorded key) and the read-back runs there in batches.

One addition to the local flow: a firmware method that the drive refuses outright, provably
starting nothing (``FirmwareRejected``: an NVMe Invalid Command Opcode, a SECURITY SET PASSWORD
that leaves security disabled), is recorded and the planner is asked again without it. The next
method must still reach the requested level, so a refused Purge never turns into a Clear unless
Clear was what was asked for.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Sequence
from typing import Protocol

from imaging.commands import CommandRunner, RecordingRunner, utc_now
from imaging.engine import PhaseReporter, ProgressCallback, _Outcome, _result
from imaging.errors import Cancelled, DeviceVanished, EraseFailure, FirmwareRejected, PlanError
from imaging.firmware_marker import marker_note, marker_offsets, write_remote_markers
from imaging.methods import FirmwareContext, FirmwareMethod, OverwriteMethod
from imaging.patterns import make_pattern
from imaging.plan import Plan, make_plan
from imaging.readback import Expected
from imaging.remote_probe import probe_remote
from imaging.remote_verify import fingerprint_remote, sampled_pieces, verify_remote
from imaging.result import CommandRecord, EraseResult, HiddenAreaStatus, Level, VerifyMode

FLASH_RESIDUAL = "flash medium overwritten: remapped/over-provisioned cells not reached"
LOCAL_ONLY_PATTERNS = ("ones",)  # the remote writes zeros or the keyed AES-CTR stream
# auto's overwrite, as a local erase's: a keyed random stream a medium cannot fake by dropping
# writes and reading back zeros (the key is recorded on the certificate and checked by read-back)
REMOTE_OVERWRITE = "random"
MIN_WRITE_STEP = 256 << 20  # bytes per remote dd run: progress and cancel between runs
MAX_WRITE_RUNS = 64  # on large disks the step grows so the certificate lists at most this many runs
MIN_WRITE_TIMEOUT = 600.0
ASSUMED_MIN_WRITE_RATE = 5 << 20  # bytes/s below which a write run is declared hung


class RemoteWrite(Protocol):
    """What one remote overwrite reports: the bytes the device acknowledged and the commands run."""

    @property
    def bytes_written(self) -> int: ...

    @property
    def records(self) -> Sequence[CommandRecord]: ...


class RemoteBlockAccess(Protocol):
    """What a remote erase needs from the machine's command channel (``hardware_drivers``'
    ``SshCommandRunner(..., record_factory=CommandRecord)`` is one)."""

    def run(self, argv: Sequence[str], timeout: float) -> CommandRecord: ...

    def write_pattern(
        self,
        device: str,
        *,
        offset: int = 0,
        length: int | None = None,
        timeout: float = 3600.0,
        key: bytes | None = None,
    ) -> RemoteWrite:
        """Overwrite ``[offset, offset + length)`` using the device's own tools: zeros, or with
        ``key`` the AES-256-CTR keystream of ``imaging.patterns`` for that key."""
        ...

    def device_size(self, device: str) -> int: ...


class _Recorder(RecordingRunner):
    """Keeps the firmware commands and the overwrite's dd runs, in order, for the result."""

    def extend(self, records: Sequence[CommandRecord]) -> None:
        with self._lock:
            self._records.extend(records)


def erase_remote(
    access: RemoteBlockAccess,
    device: str,
    *,
    level: Level,
    method: str = "auto",
    verify: VerifyMode = VerifyMode.SAMPLE,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    poll_interval: float = 5.0,
    remote_label: str | None = None,
) -> EraseResult:
    """Erase and verify the remote disk ``device`` to ``level``.

    Raises ``ProbeError``, ``TargetRefused`` or ``PlanError`` before anything is written (and lets
    the channel's own connection errors, such as a host key mismatch, propagate unchanged);
    returns ``EraseResult(ok=False, ...)`` for every failure after that.
    """
    if method in LOCAL_ONLY_PATTERNS:
        raise PlanError(f"a remote overwrite writes zeros or a keyed random stream; {method!r} is local only")
    probe = probe_remote(access, device, access.device_size)
    probe.refuse_if_unsafe()
    plan = make_plan(probe, Level(level), method, overwrite=REMOTE_OVERWRITE)
    recorder = _Recorder(access)
    outcome = _Outcome(probe=probe, plan=plan, started_at=utc_now())
    outcome.notes.extend(f"skipped {name}: {why}" for name, why in plan.considered)
    outcome.notes.extend(plan.notes)
    if remote_label:
        outcome.notes.append(f"erased remotely: {remote_label}")
    outcome.io_mode = "remote dd (O_DIRECT)"
    if probe.read_only:
        outcome.fail("device is read-only (the remote kernel refuses writes)")
        return _result(outcome, recorder)
    try:
        _run_with_fallback(access, recorder, outcome, method, verify, progress, cancel, poll_interval)
    except EraseFailure as failure:
        outcome.fail(failure.reason, failure.offset)
        outcome.residual.extend(failure.residual)
    except Exception as exc:  # a dropped connection or any other error: the medium's state is unknown
        outcome.fail(f"unexpected error, outcome unknown: {type(exc).__name__}: {exc}")
    return _result(outcome, recorder)


def _run_with_fallback(
    access: RemoteBlockAccess,
    recorder: _Recorder,
    outcome: _Outcome,
    method: str,
    mode: VerifyMode,
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
    poll_interval: float,
) -> None:
    refused: list[str] = []
    while True:
        plan = outcome.plan
        if isinstance(plan.method, OverwriteMethod) and outcome.probe.solid_state:
            outcome.residual.append(FLASH_RESIDUAL)
        try:
            if isinstance(plan.method, OverwriteMethod):
                _overwrite(access, recorder, outcome, progress, cancel)
                _verify_overwrite(access, outcome, mode, progress, cancel)
            else:
                assert isinstance(plan.method, FirmwareMethod)
                _firmware(access, recorder, outcome, plan.method, mode, progress, cancel, poll_interval)
            return
        except FirmwareRejected as rejection:
            refused.append(plan.method.name)
            outcome.notes.append(f"{plan.method.name} refused by the drive, nothing started: {rejection.reason}")
            outcome.plan = _next_plan(outcome, plan, method, refused, rejection)
            outcome.notes.append(f"falling back to {outcome.plan.method.name} ({outcome.plan.level})")


def _next_plan(outcome: _Outcome, plan: Plan, method: str, refused: list[str], rejection: FirmwareRejected) -> Plan:
    try:
        following = make_plan(outcome.probe, plan.level_requested, method, exclude=refused, overwrite=REMOTE_OVERWRITE)
    except PlanError as exc:
        raise EraseFailure(
            f"{rejection.reason}; no other method reaches {plan.level_requested} ({method}): nothing was erased"
        ) from exc
    outcome.notes.extend(following.notes)
    return following


def _check_size(access: RemoteBlockAccess, outcome: _Outcome) -> None:
    device, expected = outcome.probe.path, outcome.probe.size_bytes
    try:
        now = access.device_size(device)
    except Exception as exc:
        raise DeviceVanished(f"remote {device} no longer answers: {exc}") from exc
    if now != expected:
        raise DeviceVanished(f"remote {device} changed size from {expected} to {now} bytes during the erase")


def _overwrite(
    access: RemoteBlockAccess,
    recorder: _Recorder,
    outcome: _Outcome,
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
) -> None:
    probe = outcome.probe
    if probe.hpa is not None:
        if probe.hpa.hidden_sectors:
            # Restoring native max needs a rescan and re-probe on the remote kernel: not done remotely.
            raise EraseFailure(
                f"hidden sectors not erased: HPA hides {probe.hpa.hidden_sectors} sectors on the remote disk; "
                "erase it locally or remove the HPA first"
            )
        outcome.hidden = HiddenAreaStatus(False, False, None, probe.hpa.native_sectors, "no HPA")
    assert isinstance(outcome.plan.method, OverwriteMethod)
    pattern = make_pattern(outcome.plan.method.pattern)
    outcome.pattern, outcome.pattern_label = pattern, pattern.name
    size = probe.size_bytes
    step = max(MIN_WRITE_STEP, math.ceil(size / MAX_WRITE_RUNS / (1 << 20)) << 20)
    reporter = PhaseReporter(progress, "write", 1, 1, size)
    for offset in range(0, size, step):
        if cancel is not None and cancel.is_set():
            raise Cancelled("cancelled by operator during the overwrite", offset)
        length = min(step, size - offset)
        timeout = max(MIN_WRITE_TIMEOUT, length / ASSUMED_MIN_WRITE_RATE)
        try:
            report = access.write_pattern(probe.path, offset=offset, length=length, timeout=timeout, key=pattern.key)
        except Exception as exc:
            raise EraseFailure(f"remote overwrite failed: {exc}", offset) from exc
        recorder.extend(report.records)
        outcome.bytes_written += report.bytes_written
        if report.bytes_written != length:
            raise EraseFailure(f"remote overwrite wrote {report.bytes_written} of {length} bytes", offset)
        reporter(offset + length)
    outcome.passes_done = 1
    _check_size(access, outcome)


def _verify_overwrite(
    access: RemoteBlockAccess,
    outcome: _Outcome,
    mode: VerifyMode,
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
) -> None:
    assert outcome.pattern is not None
    probe = outcome.probe
    seed = os.urandom(16)
    total = sum(length for _, length in sampled_pieces(probe.size_bytes, probe.logical_sector_size, seed, mode))
    reporter = PhaseReporter(progress, "verify", 1, 1, total)
    outcome.verification = verify_remote(
        access,
        probe.path,
        size=probe.size_bytes,
        block=probe.logical_sector_size,
        expected=Expected(outcome.pattern.name, outcome.pattern),
        mode=mode,
        seed=seed,
        on_bytes=reporter,
        cancel=cancel,
    )
    _check_size(access, outcome)


def _firmware(
    access: RemoteBlockAccess,
    recorder: CommandRunner,
    outcome: _Outcome,
    method: FirmwareMethod,
    mode: VerifyMode,
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
    poll_interval: float,
) -> None:
    probe = outcome.probe
    expectation = method.expectation(probe)
    pattern = make_pattern(expectation.pattern) if expectation.pattern else None
    seed = os.urandom(16)
    pieces = sampled_pieces(probe.size_bytes, probe.logical_sector_size, seed, mode)
    markers = marker_offsets(pieces, probe.logical_sector_size)
    write_remote_markers(recorder, probe.path, markers, probe.logical_sector_size)
    outcome.notes.append(marker_note(len(markers)))
    before = None
    if pattern is None:
        # Vendor-defined result: fingerprint what will be read back, to prove it changed.
        before = fingerprint_remote(access, probe.path, pieces, cancel)
    reporter = PhaseReporter(progress, "firmware", 1, 1, probe.size_bytes)
    ctx = FirmwareContext(recorder, poll_interval=poll_interval, cancel=cancel, on_fraction=reporter.fraction)
    outcome.notes.extend(method.execute(probe, ctx))
    outcome.passes_done = 1
    _check_size(access, outcome)
    outcome.pattern_label = expectation.label
    verify_reporter = PhaseReporter(progress, "verify", 1, 1, sum(length for _, length in pieces))
    outcome.verification = verify_remote(
        access,
        probe.path,
        size=probe.size_bytes,
        block=probe.logical_sector_size,
        expected=Expected(expectation.label, pattern, before),
        mode=mode,
        seed=seed,
        on_bytes=verify_reporter,
        cancel=cancel,
    )
