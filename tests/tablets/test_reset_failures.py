"""A failed platform reset is typed for the record and the board: its stage, kind, the last tool call
or service exchange, the service's status and the technician's next action (replayed fixtures)."""

from __future__ import annotations

from pathlib import Path

import pytest

from factory.tablets.service import reset_evidence
from imaging.commands import ReplayRunner
from imaging.errors import PlanError
from imaging.tablets import failure as kinds
from imaging.tablets.device_management import AndroidManagement, AppleMdm, WipeWait
from imaging.tablets.identity import probe_android, probe_android_after_reset, probe_ipad, probe_windows
from imaging.tablets.methods import ResetContext
from imaging.tablets.reset import run_reset

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tablets"
UDID = "00008103-001A2B3C4D5E001E"
ANDROID_SERIAL = "R52N50ABCDE"
MMC = "/dev/mmcblk0"
NO_WAIT = WipeWait(poll_interval=0.0, deadline_seconds=0.0)


def report_of(scenario: str):
    platform = scenario.split("-", 1)[0]
    device = {"ipad": UDID, "android": ANDROID_SERIAL, "windows": MMC}[platform]
    runner = ReplayRunner(FIXTURES / f"{scenario}.json", device=device)
    if platform == "ipad":
        ctx = ResetContext(runner, {"ipados": AppleMdm(runner, "https://mdm.example.invalid")}, UDID, wait=NO_WAIT)
        return run_reset(probe_ipad(runner, UDID), ctx)
    if platform == "windows":
        return run_reset(probe_windows(runner, MMC, None), ResetContext(runner))
    dm = {} if "usb" in scenario else {"android": AndroidManagement(runner, "LC02abcd")}
    ctx = ResetContext(runner, dm, None if "usb" in scenario else "3a9f61c0e2b14d57", "uk.police.dpc", NO_WAIT)
    probe = probe_android(runner, ANDROID_SERIAL)
    return run_reset(probe, ctx, reprobe=lambda r: probe_android_after_reset(r, ANDROID_SERIAL))


@pytest.mark.parametrize(
    ("scenario", "stage", "kind", "last"),
    [
        ("ipad-mdm-refused", "reset", kinds.REFUSED, ["https", "PUT"]),
        ("ipad-mdm-request-timed-out", "reset", kinds.TIMED_OUT, ["https", "PUT"]),
        ("ipad-mdm-notnow", "reset", kinds.TIMED_OUT, ["https", "GET"]),
        ("ipad-mdm-error", "reset", kinds.LOCKED, ["https", "GET"]),  # EraseDevice Error: Lost Mode
        ("android-amapi-error", "reset", kinds.NOT_ACKNOWLEDGED, ["https", "GET"]),
        ("android-usb-owner-refused", "reset", kinds.REFUSED, ["adb", "-s"]),
        ("android-usb-owner-still-set-up", "after the reset", kinds.NOT_CONFIRMED, ["adb", "-s"]),
        ("windows-emmc-sanitize-refused", "reset", kinds.REFUSED, ["mmc", "sanitize"]),
        ("windows-emmc-sanitize-timed-out", "reset", kinds.TIMED_OUT, ["mmc", "sanitize"]),
    ],
)
def test_a_failed_reset_says_its_stage_kind_last_exchange_and_next_action(
    scenario: str, stage: str, kind: str, last: list[str]
) -> None:
    report = report_of(scenario)
    failure = report.failure
    assert not report.result.ok and failure is not None
    assert (failure.stage, failure.kind) == (stage, kind)
    assert failure.command is not None and failure.command["argv"][:2] == last
    assert failure.action == kinds.ACTIONS[kind] and "witnessed destruction" in failure.action
    assert report.result.failure_reason is not None and failure.reason in report.result.failure_reason


def test_a_service_failure_records_the_command_and_its_status_without_the_request_body() -> None:
    report = report_of("ipad-mdm-error")
    assert report.failure is not None and report.failure.service is not None
    service = report.failure.service
    assert (service["service"], service["command_id"], service["state"]) == (
        "apple-mdm",
        "8E2C4A8B-3F6D-4C1E-9B2A-7D5F0E1C3A9B",
        "error",
    )
    assert "Lost Mode" in service["detail"]
    assert report.failure.command is not None and len(report.failure.command["argv"]) == 3  # method, URL: no body
    evidence = reset_evidence(probe_ipad(ReplayRunner(FIXTURES / "ipad-mdm-error.json", device=UDID), UDID), report)
    assert evidence["failure"] == report.failure.evidence()
    assert set(evidence["failure"]) == {"stage", "kind", "reason", "command", "service", "action"}


def test_an_unencrypted_tablet_is_a_planning_failure_with_destruction_as_its_action() -> None:
    runner = ReplayRunner(FIXTURES / "android-unencrypted.json", device=ANDROID_SERIAL)
    probe = probe_android(runner, ANDROID_SERIAL)
    with pytest.raises(PlanError) as refused:
        run_reset(probe, ResetContext(runner, {"android": AndroidManagement(runner, "LC02abcd")}, "x", wait=NO_WAIT))
    failure = kinds.from_plan(probe, refused.value)
    assert (failure.stage, failure.kind) == ("plan", kinds.NOT_ENCRYPTED)
    assert failure.action == "a reset of unencrypted data is no sanitisation: send it for witnessed destruction"


def test_an_emmc_without_any_method_here_is_a_planning_failure_to_re_sanitise_or_destroy() -> None:
    runner = ReplayRunner(FIXTURES / "windows-emmc-no-sanitize.json", device=MMC)
    probe = probe_windows(runner, MMC, None)
    with pytest.raises(PlanError) as refused:
        run_reset(probe, ResetContext(runner))
    failure = kinds.from_plan(probe, refused.value)
    assert (failure.kind, failure.command) == (
        kinds.NO_METHOD,
        {"argv": ["mmc", "extcsd", "read", MMC], "returncode": 0},
    )
