"""Tablet identification and platform reset through the command seam, replaying the tools' outputs
(tests/fixtures/tablets/*.json) and the device-management services' published response shapes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from imaging.commands import ReplayRunner
from imaging.engine import erase
from imaging.errors import PlanError
from imaging.result import EraseResult, Level, Technique, VerifyMode
from imaging.tablets.device_management import AndroidManagement, AppleMdm, IntuneGraph, WipeState, WipeWait
from imaging.tablets.identity import (
    probe_android,
    probe_android_after_reset,
    probe_ipad,
    probe_ipad_after_reset,
    probe_windows,
)
from imaging.tablets.methods import CRYPTO_RESET, ResetContext
from imaging.tablets.reset import platform_reset

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tablets"
UDID = "00008103-001A2B3C4D5E001E"
ANDROID_SERIAL = "R52N50ABCDE"
AMAPI_DEVICE = "3a9f61c0e2b14d57"
INTUNE_DEVICE = "8c0e6b1a-4f2d-4b7e-9a31-d2c5e8f7a610"
MMC = "/dev/mmcblk0"
FAST = WipeWait(poll_interval=0.0, deadline_seconds=5.0)


def replay(name: str, device: str) -> ReplayRunner:
    return ReplayRunner(FIXTURES / f"{name}.json", device=device)


def ipad(name: str) -> tuple[ReplayRunner, ResetContext]:
    runner = replay(name, UDID)
    dm = AppleMdm(runner, "https://mdm.example.invalid")
    return runner, ResetContext(runner, {"ipados": dm}, managed_id=UDID, wait=FAST)


def android(name: str, *, service: str = "amapi") -> tuple[ReplayRunner, ResetContext]:
    runner = replay(name, ANDROID_SERIAL)
    if service == "amapi":
        return runner, ResetContext(runner, {"android": AndroidManagement(runner, "LC02abcd")}, AMAPI_DEVICE, wait=FAST)
    if service == "intune":
        return runner, ResetContext(runner, {"android": IntuneGraph(runner)}, INTUNE_DEVICE, wait=FAST)
    return runner, ResetContext(runner, {}, None, site_dpc="uk.police.dpc", wait=FAST)


def test_ipad_erased_through_apple_mdm_is_a_verified_crypto_erase() -> None:
    runner, ctx = ipad("ipad-mdm-acknowledged")
    probe = probe_ipad(runner, UDID)
    assert (probe.serial, probe.model, probe.supervised, probe.encrypted) == ("DMPXK4QJ2R", "iPad13,18", True, True)
    assert probe.os_build == "17.4.1 (21E236)" and probe.setup_complete is True

    result = platform_reset(probe, ctx, reprobe=lambda r: probe_ipad_after_reset(r, UDID))

    assert result.ok, result.failure_reason
    assert (result.method, result.technique, result.level_achieved) == (CRYPTO_RESET, Technique.CRYPTO_ERASE, "purge")
    assert result.verification is not None and result.verification.passed
    assert "identity unchanged" in result.verification.expected_pattern
    assert "in setup state" in result.verification.expected_pattern
    argvs = [c.argv[:2] for c in result.commands]
    # Before (pairing, identity), during (the EraseDevice request and both polls), after (audit, re-read).
    assert argvs[:3] == [("idevicepair", "-u"), ("ideviceinfo", "-u"), ("ideviceinfo", "-u")]
    assert [a for a in argvs if a[0] == "https"] == [("https", "PUT"), *[("https", "GET")] * 4]
    enqueue = next(c for c in result.commands if c.argv[1] == "PUT")
    assert '"RequestType":"EraseDevice"' in enqueue.argv[3] and '"ReturnToService"' in enqueue.argv[3]


def test_activation_lock_after_the_wipe_is_recorded() -> None:
    runner, ctx = ipad("ipad-activation-lock")
    probe = probe_ipad(runner, UDID)
    dm = ctx.management["ipados"]
    command = dm.send_wipe(UDID)
    assert dm.poll_status(command).state is WipeState.ACKNOWLEDGED
    assert dm.read_audit(command).device_lock == "Activation Lock on"
    assert probe.identified


@pytest.mark.parametrize(
    ("scenario", "reason"),
    [
        ("ipad-mdm-notnow", "timed out: not acknowledged in time (last: the iPad answered NotNow"),
        ("ipad-mdm-error", "error: EraseDevice Error: The device is in Lost Mode"),
        ("ipad-mdm-refused", "wipe refused: apple-mdm: HTTP 404: enrollment not found"),
        ("ipad-mdm-request-timed-out", "wipe refused: apple-mdm: the wipe request timed out"),
    ],
)
def test_an_unacknowledged_ipad_wipe_is_a_failed_result(scenario: str, reason: str) -> None:
    runner, ctx = ipad(scenario)
    ctx.wait = WipeWait(poll_interval=0.0, deadline_seconds=0.0)
    result = platform_reset(probe_ipad(runner, UDID), ctx)
    assert not result.ok and result.verification is None and result.level_achieved is None
    assert reason in (result.failure_reason or "")


@pytest.mark.parametrize(
    ("scenario", "problem", "action"),
    [
        ("ipad-locked", "the iPad is locked", "unlock the iPad with its passcode"),
        ("ipad-untrusted", "the iPad has not trusted this bench", "tap Trust"),
    ],
)
def test_a_locked_or_untrusted_ipad_is_not_identified_and_says_what_to_do(
    scenario: str, problem: str, action: str
) -> None:
    runner, ctx = ipad(scenario)
    probe = probe_ipad(runner, UDID)
    assert (probe.problem, probe.identified) == (problem, False)
    assert action in (probe.action or "")
    with pytest.raises(PlanError, match="not identified"):
        platform_reset(probe, ctx)


def test_android_wiped_through_the_android_management_api() -> None:
    runner, ctx = android("android-amapi-acknowledged")
    probe = probe_android(runner, ANDROID_SERIAL)
    assert (probe.model, probe.encrypted, probe.lock, probe.device_owner) == ("SM-T505", True, None, None)
    assert probe.encryption.startswith("file-based encryption")
    result = platform_reset(probe, ctx)
    assert result.ok, result.failure_reason
    assert any("WIPE" in c.argv[3] for c in result.commands if c.argv[0] == "https" and c.argv[1] == "POST")


def test_an_unencrypted_android_tablet_gets_no_crypto_erase() -> None:
    runner, ctx = android("android-unencrypted")
    probe = probe_android(runner, ANDROID_SERIAL)
    assert probe.encrypted is False
    with pytest.raises(PlanError) as refused:
        platform_reset(probe, ctx)
    assert "not encrypted (ro.crypto.state=unencrypted" in str(refused.value)
    assert "a reset of it is not a cryptographic erase" in str(refused.value)


def test_android_with_a_google_account_records_factory_reset_protection() -> None:
    runner, ctx = android("android-frp")
    probe = probe_android(runner, ANDROID_SERIAL)
    assert probe.lock == "Factory Reset Protection on (1 Google account(s))"
    assert "pc.4411" not in str(probe.evidence())  # account names are not kept
    assert platform_reset(probe, ctx).ok


@pytest.mark.parametrize(
    ("scenario", "service", "ok", "reason"),
    [
        ("android-amapi-error", "amapi", False, "WIPE failed: The device is not in a management mode"),
        ("android-intune-acknowledged", "intune", True, None),
        ("android-intune-failed", "intune", False, "Intune actionState 'failed'"),
        ("android-usb-owner-reset", "usb", True, None),
        ("android-usb-owner-refused", "usb", False, "the device-owner app refused the reset"),
    ],
)
def test_android_wipe_outcomes(scenario: str, service: str, ok: bool, reason: str | None) -> None:
    runner, ctx = android(scenario, service=service)
    # A reset over USB is confirmed by the tablet read back on adb; a service's wipe by its audit.
    reprobe = lambda r: probe_android_after_reset(r, ANDROID_SERIAL)  # noqa: E731
    result = platform_reset(probe_android(runner, ANDROID_SERIAL), ctx, reprobe=reprobe)
    assert result.ok is ok, result.failure_reason
    if reason:
        assert reason in (result.failure_reason or "")


def test_intune_audit_record_names_who_wiped() -> None:
    runner, ctx = android("android-intune-acknowledged", service="intune")
    probe_android(runner, ANDROID_SERIAL)
    dm = ctx.management["android"]
    command = dm.send_wipe(INTUNE_DEVICE)
    assert dm.poll_status(command).state is WipeState.PENDING
    assert dm.poll_status(command).state is WipeState.ACKNOWLEDGED
    audit = dm.read_audit(command)
    assert (audit.state, audit.initiated_by) == ("done", "factory-bench@police.example")


@pytest.mark.parametrize(
    ("scenario", "problem"),
    [
        ("android-unauthorized", "the tablet has not allowed USB debugging from this bench"),
        ("android-getprop-timed-out", "adb timed out"),
    ],
)
def test_android_problems_hold_identification(scenario: str, problem: str) -> None:
    runner, _ = android(scenario)
    assert probe_android(runner, ANDROID_SERIAL).problem == problem


def test_windows_emmc_secure_erase_and_sanitize_is_clear_with_its_residual_risk() -> None:
    runner = replay("windows-emmc-sanitize", MMC)
    probe = probe_windows(runner, MMC, "PTB-55G2-0042")
    assert probe.emmc is not None and probe.emmc.sanitize and probe.emmc.sectors == 0x0733C000
    result = platform_reset(probe, ResetContext(runner))
    assert result.ok and result.level_achieved == Level.CLEAR and result.technique is Technique.BLOCK_ERASE
    assert any("IEEE 2883" in risk for risk in result.residual_risk)
    with pytest.raises(PlanError, match="achieves clear only"):
        platform_reset(
            probe_windows(replay("windows-emmc-sanitize", MMC), MMC, None), ResetContext(runner), level=Level.PURGE
        )


@pytest.mark.parametrize(
    ("scenario", "reason"),
    [
        ("windows-emmc-sanitize-refused", "sanitize failed: mmc sanitize: ioctl: Connection timed out"),
        ("windows-emmc-sanitize-timed-out", "mmc sanitize timed out: the part may still be erasing"),
    ],
)
def test_windows_emmc_failures(scenario: str, reason: str) -> None:
    runner = replay(scenario, MMC)
    result = platform_reset(probe_windows(runner, MMC, None), ResetContext(runner))
    assert not result.ok and reason in (result.failure_reason or "")


def test_an_emmc_without_sanitize_has_no_method_here() -> None:
    runner = replay("windows-emmc-no-sanitize", MMC)
    with pytest.raises(PlanError, match="SEC_FEATURE_SUPPORT 0x15 lacks secure erase or sanitize"):
        platform_reset(probe_windows(runner, MMC, None), ResetContext(runner))


def test_an_ipad_that_does_not_come_back_after_its_reset_is_not_certifiable() -> None:
    runner, ctx = ipad("ipad-not-back-after-reset")
    result = platform_reset(probe_ipad(runner, UDID), ctx, reprobe=lambda r: probe_ipad_after_reset(r, UDID))
    assert not result.ok and result.verification is None
    assert "after the reset: read after the reset: ideviceinfo: ERROR: Device" in (result.failure_reason or "")


def test_an_emmc_without_sanitize_falls_to_the_engines_overwrite_where_the_bench_exposes_it(tmp_path: Path) -> None:
    target = tmp_path / "mmcblk0.img"  # the eMMC as the bench sees it: a real file the engine overwrites
    target.write_bytes(b"cached credentials " * 65536)
    runner = replay("windows-emmc-no-sanitize", MMC)
    probe = probe_windows(runner, MMC, "PTB-55G2-0042")
    ctx = ResetContext(runner, overwrite=lambda level: erase(str(target), level=level, verify=VerifyMode.FULL))
    result = platform_reset(probe, ctx)

    assert result.ok, result.failure_reason
    assert (result.technique, result.level_achieved) == (Technique.OVERWRITE, Level.CLEAR)
    assert result.verification is not None and result.verification.passed and result.verification.coverage == 1.0
    assert b"cached credentials" not in target.read_bytes()
    assert "emmc-secure-erase-sanitize: unsupported here: SEC_FEATURE_SUPPORT 0x15 lacks secure erase or sanitize" in (
        result.notes
    )
    assert any(risk.startswith("eMMC without sanitize, overwritten from the host") for risk in result.residual_risk)
    assert result.commands[0].argv[:3] == ("mmc", "extcsd", "read")  # the probe's reading is on the record


def test_an_overwritten_emmc_that_reports_its_own_serial_is_named_by_the_recorded_medium(tmp_path: Path) -> None:
    """A real eMMC has a CID serial (not the tablet's): the result leaves the serial to the round
    (which names the medium the tablet was booked in under), else certification would refuse it."""
    target = tmp_path / "mmcblk0.img"
    target.write_bytes(bytes(1 << 20))

    def overwrite(level: Level) -> EraseResult:
        erased = erase(str(target), level=level, verify=VerifyMode.FULL)
        return replace(erased, media=replace(erased.media, serial="0x3c1f0a9e"))  # as sysfs device/serial reads

    runner = replay("windows-emmc-no-sanitize", MMC)
    result = platform_reset(probe_windows(runner, MMC, "PTB-55G2-0042"), ResetContext(runner, overwrite=overwrite))
    assert result.ok and result.media.serial is None
    assert "the eMMC's own serial: 0x3c1f0a9e" in result.notes


def test_an_emmc_with_sanitize_keeps_its_firmware_erase_even_where_it_could_be_overwritten() -> None:
    runner = replay("windows-emmc-sanitize", MMC)
    ctx = ResetContext(runner, overwrite=lambda level: pytest.fail("the firmware erase comes first"))
    result = platform_reset(probe_windows(runner, MMC, None), ctx)
    assert result.ok and result.method == "eMMC secure erase + sanitize"
