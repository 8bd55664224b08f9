"""Engine entry point: probe, refuse, plan, erase, verify; one ``EraseResult`` per medium.

Refusals (system disk, mounted, in use) and planning errors are raised before anything is opened for
writing. Everything that goes wrong afterwards fails closed: the result has ``ok=False``, a
one-line reason and, where known, the byte offset. ``ok`` is True only when the erase completed
and the read-back verification passed.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from imaging.blockio import TargetIO
from imaging.commands import CommandRunner, RecordingRunner, SubprocessRunner, utc_now
from imaging.errors import EraseFailure, TargetRefused
from imaging.firmware_marker import marker_note, marker_offsets, write_local_markers
from imaging.hidden_areas import restore_native_max
from imaging.ieee2883 import firmware_revision, probed_capabilities
from imaging.methods import FirmwareContext, FirmwareMethod, OverwriteMethod
from imaging.overwrite_pass import DEFAULT_CHUNK, write_pass
from imaging.patterns import Pattern, make_pattern
from imaging.plan import Plan, make_plan
from imaging.probe import Probe, probe_target
from imaging.readback import Expected, fingerprint, read_segments, sample_plan, verify
from imaging.result import (
    EraseResult,
    FirstFailure,
    HiddenAreaStatus,
    Level,
    VerificationResult,
    VerifyMode,
)
from imaging.toolinfo import TOOL_NAME, code_sha256, tool_version

PROGRESS_INTERVAL = 0.25


@dataclass(frozen=True)
class Progress:
    phase: str  # "write", "verify" or "firmware"
    pass_index: int  # 1-based
    pass_total: int
    bytes_done: int
    bytes_total: int
    rate_bps: float
    eta_s: float | None


ProgressCallback = Callable[[Progress], None]


class PhaseReporter:
    """Turns byte counts into throttled ``Progress`` events for one phase."""

    def __init__(
        self, callback: ProgressCallback | None, phase: str, index: int, total_passes: int, total: int
    ) -> None:
        self._callback = callback
        self._phase = phase
        self._index = index
        self._passes = total_passes
        self._total = total
        self._start = time.monotonic()
        self._last = 0.0

    def __call__(self, done: int) -> None:
        if self._callback is None:
            return
        now = time.monotonic()
        if done < self._total and now - self._last < PROGRESS_INTERVAL:
            return
        self._last = now
        elapsed = max(now - self._start, 1e-9)
        rate = done / elapsed
        eta = (self._total - done) / rate if rate > 0 else None
        self._callback(Progress(self._phase, self._index, self._passes, done, self._total, rate, eta))

    def fraction(self, value: float) -> None:
        self(int(value * self._total))


@dataclass
class _Outcome(FirstFailure):
    """Facts accumulated while erasing, turned into the result at the end."""

    probe: Probe
    plan: Plan
    started_at: str
    pattern: Pattern | None = None
    pattern_label: str | None = None
    bytes_written: int = 0
    passes_done: int = 0
    hidden: HiddenAreaStatus = field(default_factory=HiddenAreaStatus)
    verification: VerificationResult | None = None
    io_mode: str | None = None
    notes: list[str] = field(default_factory=list)
    residual: list[str] = field(default_factory=list)


def erase(
    target: str | Probe,
    *,
    level: Level,
    method: str = "auto",
    verify: VerifyMode = VerifyMode.SAMPLE,
    passes: int = 1,
    progress: ProgressCallback | None = None,
    runner: CommandRunner | None = None,
    cancel: threading.Event | None = None,
    poll_interval: float = 5.0,
    chunk: int = DEFAULT_CHUNK,
) -> EraseResult:
    """Erase and verify one medium (block device or regular file) to ``level``.

    ``target`` is its path, or a ``Probe`` already taken (firmware capabilities included).
    Raises ``ProbeError``, ``TargetRefused`` (system disk, mounted, in use) or ``PlanError`` before
    anything is written; returns ``EraseResult(ok=False, ...)`` for every failure after that.
    """
    runner = runner if runner is not None else SubprocessRunner()
    probe = target if isinstance(target, Probe) else probe_target(target, runner)
    probe.refuse_if_unsafe()
    plan = make_plan(probe, Level(level), method, passes)
    recorder = RecordingRunner(runner)
    outcome = _Outcome(probe=probe, plan=plan, started_at=utc_now())
    outcome.notes.extend(f"skipped {name}: {why}" for name, why in plan.considered)
    outcome.notes.extend(plan.notes)
    if probe.solid_state and isinstance(plan.method, OverwriteMethod):
        outcome.residual.append("flash medium overwritten: remapped/over-provisioned cells not reached")
    if probe.read_only:
        outcome.fail("device is read-only (the kernel refuses writes)")
        return _result(outcome, recorder)
    io: TargetIO | None = None
    try:
        if isinstance(plan.method, OverwriteMethod):
            target, outcome.hidden, hidden_failure = restore_native_max(probe, recorder)
            outcome.probe = target
            io = TargetIO(target, write=True)
            outcome.io_mode = io.io_mode
            _overwrite(io, plan, outcome, progress, cancel, chunk)
            if hidden_failure is not None:
                outcome.fail(hidden_failure)
            _verify(io, outcome, verify, progress, cancel, chunk)
        else:
            assert isinstance(plan.method, FirmwareMethod)
            io = TargetIO(probe, write=True)
            outcome.io_mode = io.io_mode
            _firmware(io, plan.method, outcome, recorder, verify, progress, cancel, poll_interval, chunk)
    except TargetRefused:
        raise  # busy at open (O_EXCL): refused before anything was written
    except EraseFailure as failure:
        outcome.fail(failure.reason, failure.offset)
        outcome.residual.extend(failure.residual)
    except Exception as exc:  # any other error leaves the medium in an unknown state
        outcome.fail(f"unexpected error, outcome unknown: {type(exc).__name__}: {exc}")
    finally:
        if io is not None:
            io.close()
    return _result(outcome, recorder)


def _overwrite(
    io: TargetIO,
    plan: Plan,
    outcome: _Outcome,
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
    chunk: int,
) -> None:
    assert isinstance(plan.method, OverwriteMethod)
    for index in range(1, plan.passes + 1):
        # A random pattern gets a fresh key each pass; the last one is recorded and verified.
        pattern = make_pattern(plan.method.pattern)
        outcome.pattern, outcome.pattern_label = pattern, pattern.name
        reporter = PhaseReporter(progress, "write", index, plan.passes, io.size)
        written = 0

        def on_bytes(done: int, reporter: PhaseReporter = reporter) -> None:
            nonlocal written
            written = done
            reporter(done)

        try:
            write_pass(io, pattern, chunk=chunk, on_bytes=on_bytes, cancel=cancel)
        finally:
            outcome.bytes_written += written  # what reached the medium, also when a pass fails
        outcome.passes_done = index


def _firmware(
    io: TargetIO,
    method: FirmwareMethod,
    outcome: _Outcome,
    runner: CommandRunner,
    mode: VerifyMode,
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
    poll_interval: float,
    chunk: int,
) -> None:
    expectation = method.expectation(outcome.probe)
    pattern = make_pattern(expectation.pattern) if expectation.pattern else None
    seed = os.urandom(16)
    plan = sample_plan(io.size, io.align, seed)
    regions = list(plan.locations) if mode is VerifyMode.SAMPLE and plan is not None else [(0, io.size)]
    markers = marker_offsets(regions, io.align)
    write_local_markers(io, markers)  # before the fingerprint: a no-op must leave them to be found
    outcome.notes.append(marker_note(len(markers)))
    before = None
    if pattern is None:
        # Vendor-defined result: fingerprint what will be read back, to prove it changed.
        before = fingerprint(io, read_segments(io, regions, chunk), chunk)
    reporter = PhaseReporter(progress, "firmware", 1, 1, io.size)
    ctx = FirmwareContext(runner, poll_interval=poll_interval, cancel=cancel, on_fraction=reporter.fraction)
    outcome.notes.extend(method.execute(outcome.probe, ctx))
    outcome.passes_done = 1
    io.check_present()
    outcome.pattern_label = expectation.label
    expected = Expected(expectation.label, pattern, before)
    verify_reporter = PhaseReporter(progress, "verify", 1, 1, _region_bytes(regions))
    outcome.verification = verify(io, expected, mode, plan=plan, chunk=chunk, on_bytes=verify_reporter, cancel=cancel)


def _verify(
    io: TargetIO,
    outcome: _Outcome,
    mode: VerifyMode,
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
    chunk: int,
) -> None:
    assert outcome.pattern is not None
    # A full read-back needs no sample plan (nor numpy, which only planning a sample loads).
    plan = sample_plan(io.size, io.align, os.urandom(16)) if mode is VerifyMode.SAMPLE else None
    sampled = mode is VerifyMode.SAMPLE and plan is not None
    total = plan.bytes_sampled if sampled and plan is not None else io.size
    reporter = PhaseReporter(progress, "verify", outcome.passes_done, outcome.plan.passes, total)
    expected = Expected(outcome.pattern.name, outcome.pattern)
    outcome.verification = verify(io, expected, mode, plan=plan, chunk=chunk, on_bytes=reporter, cancel=cancel)


def _region_bytes(regions: list[tuple[int, int]]) -> int:
    return sum(length for _, length in regions)


def _result(outcome: _Outcome, recorder: RecordingRunner) -> EraseResult:
    probe, plan, check = outcome.probe, outcome.plan, outcome.verification
    if outcome.failure_reason is None and check is not None and not check.passed:
        outcome.fail(
            f"verification failed: {check.mismatches} bytes differ from the expected {check.expected_pattern}",
            check.first_mismatch_offset,
        )
    if outcome.failure_reason is None and check is None:
        outcome.fail("not verified: outcome unknown")
    ok = outcome.failure_reason is None
    pattern = outcome.pattern
    return EraseResult(
        ok=ok,
        media=probe.identity(),
        level_requested=plan.level_requested,
        level_achieved=plan.level if ok else None,
        method=plan.method.name,
        technique=plan.method.technique,
        pattern=outcome.pattern_label,
        pattern_seed_hex=pattern.seed_hex if pattern is not None else None,
        passes=outcome.passes_done,
        bytes_written=outcome.bytes_written,
        first_lba=0,
        last_lba=max(0, -(-probe.size_bytes // probe.logical_sector_size) - 1),
        started_at=outcome.started_at,
        ended_at=utc_now(),
        commands=probe.commands + recorder.records,
        hidden_areas=outcome.hidden,
        verification=check,
        failure_reason=outcome.failure_reason,
        failure_offset=outcome.failure_offset,
        tool_name=TOOL_NAME,
        tool_version=tool_version(),
        tool_code_sha256=code_sha256(),
        residual_risk=tuple(outcome.residual),
        io_mode=outcome.io_mode,
        notes=tuple(outcome.notes),
        firmware_revision=firmware_revision(probe),
        sanitize_capabilities=probed_capabilities(probe),
    )


def verify_target(
    path: str,
    *,
    pattern: str,
    pattern_seed_hex: str | None = None,
    mode: VerifyMode = VerifyMode.FULL,
    sample_seed_hex: str | None = None,
) -> VerificationResult:
    """Re-verify a medium against a recorded pattern (and sample seed), e.g. to audit a result."""
    key = bytes.fromhex(pattern_seed_hex) if pattern_seed_hex else None
    expected_pattern = make_pattern(pattern, key)
    probe = probe_target(path)
    with TargetIO(probe, write=False) as io:
        seed = bytes.fromhex(sample_seed_hex) if sample_seed_hex else os.urandom(16)
        plan = sample_plan(io.size, io.align, seed)
        return verify(io, Expected(pattern, expected_pattern), mode, plan=plan)
