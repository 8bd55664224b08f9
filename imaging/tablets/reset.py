"""Sanitise one tablet: plan, run the method, check the tablet after it, return one ``EraseResult``.

The result is ``ok`` only when the method ran to a confirmed end (the service acknowledged the
wipe and its audit record was read, or the eMMC commands reported success) **and** the after
checks pass; anything else is a failed result with the reason, which has no path to a
certificate. Every tool call and service exchange is on ``result.commands``; the "before"
identity is the caller's probe, the "after" checks are ``verification`` (one location per check).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from imaging.commands import CommandRunner, RecordingRunner, utc_now
from imaging.errors import EraseFailure, PlanError
from imaging.result import EraseResult, Level, MediaIdentity, VerificationResult, VerifyMode
from imaging.tablets.failure import NOT_CONFIRMED, ResetFailure, from_method, last_exchange
from imaging.tablets.identity import ANDROID, WINDOWS, TabletProbe
from imaging.tablets.methods import ResetContext, ResetOutcome, TabletPlan, plan_reset
from imaging.toolinfo import TOOL_NAME, code_sha256, tool_version

# Reads the tablet again after the reset, through the command seam it is given.
Reprobe = Callable[[CommandRunner], TabletProbe]
RESIDUAL_CRYPTO = (
    "cryptographic erase relies on the platform's key destruction (NCSC: a reset is not a guarantee "
    "by itself; this record shows encryption was on and the reset completed)",
)
RESIDUAL_EMMC = ("eMMC erase + sanitize is Clear (IEEE 2883-2022): not a Purge of the flash",)
RESIDUAL_EMMC_OVERWRITE = (
    "eMMC without sanitize, overwritten from the host: Clear only (IEEE 2883-2022); blocks its controller "
    "remapped or holds in reserve are not reached and may keep data",
)


@dataclass(frozen=True)
class AfterCheck:
    name: str
    passed: bool
    detail: str


def after_checks(
    before: TabletProbe, after: TabletProbe | None, outcome: ResetOutcome, *, expected: bool = False
) -> list[AfterCheck]:
    """The tablet after the reset: confirmed by the service or the tools, identity unchanged, in setup.
    ``expected``: the tablet was to be read again; not reading it is a failed check, not a skipped one."""
    checks = [AfterCheck("confirmed", True, outcome.acknowledgement or "; ".join(outcome.notes))]
    if outcome.audit is not None:
        checks.append(AfterCheck("audit record read", True, f"{outcome.audit.state} ({outcome.audit.command_id})"))
    if expected and (after is None or not after.identified):
        checks.append(AfterCheck("read after the reset", False, after.problem or "" if after else "not read"))
    if after is not None and after.identified:
        same = (after.serial or after.udid) == (before.serial or before.udid)
        checks.append(AfterCheck("identity unchanged", same, f"{after.serial or after.udid}"))
        if before.platform != WINDOWS:
            fresh = after.setup_complete is False
            state = "unactivated / setup wizard" if fresh else "still set up" if after.setup_complete else "unknown"
            checks.append(AfterCheck("in setup state", fresh, state))
        if before.platform == ANDROID:
            alone = after.users == (0,)
            listed = ", ".join(map(str, after.users)) if after.users is not None else "not read"
            checks.append(AfterCheck("no user profiles", alone, f"users: {listed}"))
    return checks


def _media(probe: TabletProbe) -> MediaIdentity:
    if len(probe.disks) == 1:  # a Windows tablet's NVMe / SATA disk: as the remote probe read it
        return probe.disks[0].probe.identity()
    ext = probe.emmc
    return MediaIdentity(
        path=f"{probe.platform}:{probe.ref}",
        target_kind="block" if ext is not None else "device",
        media_type="emmc" if ext is not None else "flash",
        size_bytes=ext.sectors * 512 if ext is not None else 0,
        logical_sector_size=512,
        physical_sector_size=512,
        model=probe.model,
        serial=None,  # the storage has no serial of its own here: the round names the recorded medium
        manufacturer=probe.maker,
        transport="usb",
    )


@dataclass(frozen=True)
class ResetReport:
    """The result, and what the custody record keeps of the reset: its command and the after checks."""

    result: EraseResult
    outcome: ResetOutcome | None  # None: the method failed before it confirmed anything
    checks: tuple[AfterCheck, ...] = ()
    after: TabletProbe | None = None  # the tablet read again after its reset, where it was
    failure: ResetFailure | None = None  # why it failed (stage, kind, last exchange, next action)


def platform_reset(
    probe: TabletProbe, ctx: ResetContext, *, level: Level = Level.CLEAR, reprobe: Reprobe | None = None
) -> EraseResult:
    """Sanitise the tablet ``probe`` describes (see :func:`run_reset`); the result only."""
    return run_reset(probe, ctx, level=level, reprobe=reprobe).result


def run_reset(
    probe: TabletProbe, ctx: ResetContext, *, level: Level = Level.CLEAR, reprobe: Reprobe | None = None
) -> ResetReport:
    """Sanitise the tablet ``probe`` describes; never raises for a failure during the reset.

    :raises PlanError: nothing was sent: the tablet is unidentified or no method serves it.
    """
    recorder = RecordingRunner(ctx.runner)  # this reset's calls; the probe kept its own
    ctx = replace(ctx, runner=recorder)
    plan = plan_reset(probe, ctx, level)
    started = utc_now()
    try:
        outcome = plan.method.execute(probe, ctx)
    except EraseFailure as exc:
        failed = _result(probe, plan, (started, level), recorder, ok=False, failure=exc.reason, residual=exc.residual)
        return ResetReport(failed, None, failure=from_method(exc, recorder.records))
    if outcome.erased is not None:  # the erase engine did it: its result, with the tablet's evidence
        return ResetReport(
            _engine_result(probe, plan, outcome.erased, recorder), outcome, after_checks(probe, None, outcome)
        )
    wanted = probe.platform in plan.method.read_back
    after = reprobe(recorder) if wanted and reprobe else None
    expected = wanted and (reprobe is not None or plan.method.read_back_required)
    checks = after_checks(probe, after, outcome, expected=expected)
    failed_checks = [c for c in checks if not c.passed]
    if failed_checks:
        why = "; ".join(f"{c.name}: {c.detail}" for c in failed_checks)
        failed = _result(probe, plan, (started, level), recorder, ok=False, failure=f"after the reset: {why}")
        failure = ResetFailure("after the reset", NOT_CONFIRMED, why, last_exchange(recorder.records))
        return ResetReport(failed, outcome, tuple(checks), after, failure)
    verification = VerificationResult(
        mode=VerifyMode.FULL,
        expected_pattern="platform reset: " + ", ".join(c.name for c in checks),
        seed_hex=None,
        bytes_read=0,
        coverage=1.0,
        subsections=len(checks),
        locations=len(checks),
        mismatches=0,
        passed=True,
    )
    notes = (*[f"{n}: {w}" for n, w in plan.considered], plan.note, *outcome.notes, f"path: {outcome.path}")
    result = _result(probe, plan, (started, level), recorder, ok=True, verification=verification, notes=notes)
    return ResetReport(result, outcome, tuple(checks), after)


def _result(
    probe: TabletProbe,
    plan: TabletPlan,
    begun: tuple[str, Level],
    recorder: RecordingRunner,
    *,
    ok: bool,
    failure: str | None = None,
    residual: tuple[str, ...] = (),
    verification: VerificationResult | None = None,
    notes: tuple[str, ...] = (),
) -> EraseResult:
    crypto = plan.method.label.startswith("cryptographic")
    started, level = begun
    return EraseResult(
        ok=ok,
        media=_media(probe),
        level_requested=level,
        level_achieved=plan.level if ok else None,
        method=plan.method.label,
        technique=plan.method.technique,
        pattern=None,
        pattern_seed_hex=None,
        passes=1,
        bytes_written=0,
        first_lba=0,
        last_lba=probe.emmc.last_sector if probe.emmc is not None else 0,
        started_at=started,
        ended_at=utc_now(),
        commands=(*probe.commands, *recorder.records),
        verification=verification,
        failure_reason=failure,
        tool_name=TOOL_NAME,
        tool_version=tool_version(),
        tool_code_sha256=code_sha256(),
        residual_risk=(*_method_residual(probe, crypto), *residual),
        notes=notes,
        firmware_revision=probe.os_build,
        sanitize_capabilities=_capabilities(probe),
    )


def _engine_result(probe: TabletProbe, plan: TabletPlan, erased: EraseResult, recorder: RecordingRunner) -> EraseResult:
    """The engine's erase (its medium, method, pattern, verification) with what the planner found on the tablet.

    An eMMC keeps no serial of its own here: the round names the tablet's built-in storage by the
    serial it was booked in under, which an eMMC's CID serial (sysfs ``device/serial``) never is;
    that serial stays in the notes. An NVMe or SATA disk is a recorded medium under its own serial
    (matched in the service environment), certified under it as a laptop's disk is."""
    emmc_part = probe.emmc is not None
    own = (f"the eMMC's own serial: {erased.media.serial}",) if emmc_part and erased.media.serial else ()
    return replace(
        erased,
        media=replace(erased.media, serial=None) if emmc_part else erased.media,
        commands=(*probe.commands, *recorder.records, *erased.commands),
        residual_risk=(*erased.residual_risk, *(RESIDUAL_EMMC_OVERWRITE if emmc_part else ())),
        notes=(*[f"{n}: {w}" for n, w in plan.considered], plan.note, *erased.notes, *own),
        firmware_revision=erased.firmware_revision or probe.os_build,
        sanitize_capabilities=(*erased.sanitize_capabilities, *_capabilities(probe)),
    )


def _method_residual(probe: TabletProbe, crypto: bool) -> tuple[str, ...]:
    """What a platform reset or the eMMC commands leave; a disk's erase states its own (the engine's)."""
    if crypto:
        return RESIDUAL_CRYPTO
    return RESIDUAL_EMMC if probe.emmc is not None else ()


def _capabilities(probe: TabletProbe) -> tuple[str, ...]:
    """What the tablet offered, as the certificate's probed capabilities: its encryption (the basis
    of a crypto erase, read before the reset) or its eMMC's secure commands."""
    caps = [f"platform crypto erase: {probe.encryption}"] if probe.encrypted else []
    if probe.emmc is not None:
        caps += [
            name
            for name, ok in (("emmc-secure-erase", probe.emmc.secure_erase), ("emmc-sanitize", probe.emmc.sanitize))
            if ok
        ]
    return tuple(caps)


__all__ = ["AfterCheck", "PlanError", "ResetReport", "platform_reset", "run_reset"]
