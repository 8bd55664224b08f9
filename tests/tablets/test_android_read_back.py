"""An Android tablet reset over USB by the site's device-owner app: no service acknowledges it, so
the "after" evidence is the tablet's own word once it is back on adb (same ``ro.serialno``, in its
setup wizard, only the system user, FRP state), read through the command seam and replayed here
from the tools' real output formats (tests/fixtures/tablets/android-usb-owner-*.json)."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness.domain import receive, state_of

from factory.intake.service import MediaSpec
from factory.kernel.db.engine import session_scope
from factory.tablets.bench import TabletBench
from factory.tablets.service import TabletRequest, reset_evidence, sanitise_tablet
from factory.tablets.views import latest_tablet_round
from imaging.commands import ReplayRunner
from imaging.tablets.device_management import WipeWait
from imaging.tablets.identity import NOT_BACK, probe_android, probe_android_after_reset
from imaging.tablets.methods import CRYPTO_RESET, ResetContext
from imaging.tablets.reset import run_reset

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tablets"
SERIAL = "R52N50ABCDE"
NO_WAIT = WipeWait(poll_interval=0.0, deadline_seconds=0.0)


def usb_reset(scenario: str) -> tuple[ReplayRunner, ResetContext]:
    runner = ReplayRunner(FIXTURES / f"{scenario}.json", device=SERIAL)
    return runner, ResetContext(runner, {}, None, site_dpc="uk.police.dpc", wait=NO_WAIT)


def read_back(runner):  # the tablet read once, as the bench's poll ends with it
    return probe_android_after_reset(runner, SERIAL)


def test_a_usb_reset_is_confirmed_by_the_tablet_back_on_adb() -> None:
    runner, ctx = usb_reset("android-usb-owner-reset")
    probe = probe_android(runner, SERIAL)
    report = run_reset(probe, ctx, reprobe=read_back)

    result = report.result
    assert result.ok, result.failure_reason
    assert (result.method, result.level_achieved) == (CRYPTO_RESET, "purge")
    assert result.verification is not None
    assert result.verification.expected_pattern == (
        "platform reset: confirmed, identity unchanged, in setup state, no user profiles"
    )
    after = [c.argv[3:] for c in result.commands[len(probe.commands) :] if c.argv[:2] == ("adb", "-s")]
    assert after[1:] == [
        ("shell", "getprop"),
        ("shell", "settings", "get", "secure", "user_setup_complete"),
        ("shell", "settings", "get", "global", "device_provisioned"),
        ("shell", "pm", "list", "users"),
        ("shell", "settings", "get", "global", "secure_frp_mode"),
    ]
    evidence = reset_evidence(probe, report)
    assert evidence["read_back"] == {
        "platform": "android",
        "read": True,
        "serial": SERIAL,
        "udid": None,
        "model": "SM-T505",
        "setup_complete": False,
        "users": [0],
        "lock": None,
    }
    assert "redistribution_blockers" not in evidence


def test_a_usb_reset_without_a_way_to_read_the_tablet_back_is_not_certifiable() -> None:
    runner, ctx = usb_reset("android-usb-owner-reset")
    report = run_reset(probe_android(runner, SERIAL), ctx)
    assert not report.result.ok and report.result.verification is None
    assert report.result.failure_reason == "after the reset: read after the reset: not read"


@pytest.mark.parametrize(
    ("scenario", "reason"),
    [
        ("android-usb-owner-not-back", f"read after the reset: {NOT_BACK}"),
        (
            "android-usb-owner-back-unauthorized",
            "read after the reset: the tablet has not allowed USB debugging from this bench",
        ),
        ("android-usb-owner-other-serial", "identity unchanged: R52N50ZZZZZ"),
        ("android-usb-owner-still-set-up", "in setup state: still set up; no user profiles: users: 0, 10"),
    ],
)
def test_a_tablet_not_back_or_back_wrong_after_its_usb_reset_gets_no_certificate(scenario: str, reason: str) -> None:
    runner, ctx = usb_reset(scenario)
    report = run_reset(probe_android(runner, SERIAL), ctx, reprobe=read_back)
    assert not report.result.ok and report.result.level_achieved is None
    assert report.result.failure_reason == f"after the reset: {reason}"


def test_frp_holding_the_setup_wizard_after_the_reset_is_a_redistribution_blocker() -> None:
    runner, ctx = usb_reset("android-usb-owner-frp-after")
    probe = probe_android(runner, SERIAL)
    report = run_reset(probe, ctx, reprobe=read_back)
    assert report.result.ok, report.result.failure_reason
    evidence = reset_evidence(probe, report)
    assert evidence["read_back"]["lock"] == "Factory Reset Protection on (secure_frp_mode=1)"
    assert evidence["redistribution_blockers"] == ["Factory Reset Protection on (secure_frp_mode=1)"]


@pytest.mark.parametrize(
    ("scenario", "problem", "setup_complete"),
    [("android-usb-owner-reset", None, False), ("android-usb-owner-not-back", NOT_BACK, None)],
)
def test_the_bench_polls_the_tablet_until_it_is_back_or_the_deadline(
    scenario: str, problem: str | None, setup_complete: bool | None
) -> None:
    runner, _ = usb_reset(scenario)
    probe = probe_android(runner, SERIAL)
    bench = TabletBench(runner_for=lambda _ref: runner, site_dpc="uk.police.dpc", wait=NO_WAIT)
    reprobe = bench.reprobe(probe)
    assert reprobe is not None
    runner.run(["adb", "-s", SERIAL, "shell", "am", "broadcast", "-a", "uk.police.factory.action.WIPE", "-n",
                "uk.police.dpc/.WipeReceiver"], 5)  # fmt: skip
    runner.run(["adb", "devices", "-l"], 5)  # it left adb to reset
    after = reprobe(runner)
    assert (after.problem, after.setup_complete) == (problem, setup_complete)


def _request(ctx, scenario: str) -> TabletRequest:
    receive(ctx, SERIAL, [MediaSpec("ufs", SERIAL, 64 * 10**9)], make="Samsung", kind="tablet")
    runner, reset = usb_reset(scenario)
    return TabletRequest(SERIAL, probe_android(runner, SERIAL), reset, "tech.one", "B1-T2", reprobe=read_back)


def test_the_closing_entry_keeps_what_the_tablet_said_after_its_reset(ctx) -> None:
    outcome = sanitise_tablet(ctx, _request(ctx, "android-usb-owner-reset"))
    assert outcome.ok and state_of(ctx, SERIAL) == "sanitised"
    with session_scope(ctx.engine) as s:
        record = latest_tablet_round(s, SERIAL)
    assert record is not None and record.certified
    assert record.closing["wipe"]["path"] == "usb (device owner)"
    assert (record.closing["read_back"]["serial"], record.closing["read_back"]["users"]) == (SERIAL, [0])
    assert {c["check"] for c in record.closing["after"] if c["passed"]} == {
        "confirmed",
        "identity unchanged",
        "in setup state",
        "no user profiles",
    }


def test_a_tablet_back_still_set_up_fails_its_round_with_the_reason(ctx) -> None:
    outcome = sanitise_tablet(ctx, _request(ctx, "android-usb-owner-still-set-up"))
    assert not outcome.ok and outcome.state == "sanitise_failed"
    assert "in setup state: still set up" in (outcome.failure_reason or "")
    with session_scope(ctx.engine) as s:
        record = latest_tablet_round(s, SERIAL)
    assert record is not None and record.closed_event == "fail"
    assert record.closing["read_back"]["setup_complete"] is True
