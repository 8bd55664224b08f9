"""A supervised iPad erased over USB by pymobiledevice3 (``profile erase-device``, MCInstall
``EraseDevice``), through the one command seam: offered only where the tool is on the bench, after
the MDM; the tool's "Erased device" is no acknowledgement, so the iPad read back unactivated with
the same UDID is what confirms it, and anything short of that is a failed round with its kind."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from harness.domain import receive, state_of
from sqlmodel import select

from factory.intake.service import MediaSpec
from factory.kernel.db.engine import session_scope
from factory.kernel.models.certificate import Certificate
from factory.kernel.site_keys import load_public_key
from factory.tablets.bench import TabletBench
from factory.tablets.service import TabletRequest, sanitise_tablet
from factory.tablets.views import latest_tablet_round
from imaging.certificate import verify_certificate
from imaging.commands import NOT_FOUND, ReplayRunner, SubprocessRunner
from imaging.errors import PlanError
from imaging.result import CommandRecord, Technique
from imaging.tablets import failure as kinds
from imaging.tablets.device_management import AppleMdm, WipeWait
from imaging.tablets.identity import probe_ipad, probe_ipad_after_reset
from imaging.tablets.methods import CRYPTO_RESET, ResetContext, plan_reset
from imaging.tablets.reset import run_reset
from imaging.tablets.usb_erase import erase_argv, parse_erase

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tablets"
UDID = "00008103-001A2B3C4D5E001E"
SERIAL = "DMPXK4QJ2R"
NO_WAIT = WipeWait(poll_interval=0.0, deadline_seconds=0.0)  # read back once: the fixture's answer stands


def usb(scenario: str, *, tool: bool = True) -> tuple[ReplayRunner, ResetContext]:
    runner = ReplayRunner(FIXTURES / f"{scenario}.json", device=UDID)
    return runner, ResetContext(runner, {}, None, wait=NO_WAIT, usb_erase_tool=tool)


def reprobe(runner: object) -> object:
    return probe_ipad_after_reset(runner, UDID)  # type: ignore[arg-type]


def test_a_supervised_ipad_without_mdm_is_erased_over_usb_and_confirmed_by_its_read_back() -> None:
    runner, ctx = usb("ipad-usb-erase")
    probe = probe_ipad(runner, UDID)
    assert probe.supervised is True and probe.setup_complete is True

    report = run_reset(probe, ctx, reprobe=reprobe)

    result = report.result
    assert result.ok, result.failure_reason
    assert (result.method, result.technique, result.level_achieved) == (CRYPTO_RESET, Technique.CRYPTO_ERASE, "purge")
    [sent] = [c for c in result.commands if c.argv[0] == "pymobiledevice3"]
    assert list(sent.argv) == erase_argv(UDID) and "--no-preserve-data-plan" in sent.argv
    assert report.outcome is not None and report.outcome.path == "usb (supervised iPad, MCInstall EraseDevice)"
    assert report.outcome.acknowledgement is None  # the tool's "Erased device" is not one
    assert "the iPad left usbmux to erase" in report.outcome.notes  # it restarted into the erase
    checks = {c.name: c.passed for c in report.checks}
    assert checks == {"confirmed": True, "identity unchanged": True, "in setup state": True}
    assert report.after is not None and report.after.udid == UDID and report.after.setup_complete is False
    assert result.commands[-1].argv == ("ideviceinfo", "-u", UDID, "-s")  # the confirmation is the iPad's own


def test_the_mdm_goes_first_where_the_ipad_is_enrolled() -> None:
    """Acknowledged and audited, with Return to Service: the erase over USB is not even asked for
    (the replay has no pymobiledevice3 step, so a call to it would fail the test)."""
    runner = ReplayRunner(FIXTURES / "ipad-mdm-acknowledged.json", device=UDID)
    dm = AppleMdm(runner, "https://mdm.example.invalid")
    ctx = ResetContext(runner, {"ipados": dm}, UDID, wait=WipeWait(0.0, 5.0), usb_erase_tool=True)
    result = run_reset(probe_ipad(runner, UDID), ctx, reprobe=reprobe).result
    assert result.ok and not any(c.argv[0] == "pymobiledevice3" for c in result.commands)


def test_a_bench_without_pymobiledevice3_answers_unsupported_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert TabletBench().usb_erase_tool is (shutil.which("pymobiledevice3") is not None)
    monkeypatch.setenv("PATH", str(tmp_path))  # a bench where it is not installed
    bench = TabletBench()
    runner, ctx = usb("ipad-usb-erase", tool=bench.usb_erase_tool)
    with pytest.raises(PlanError) as refused:
        plan_reset(probe_ipad(runner, UDID), ctx)
    assert "usb-supervised-erase: unsupported here: pymobiledevice3 not installed on this bench" in str(refused.value)
    assert "device-management-wipe: unsupported here: no device-management service configured for ipados" in str(
        refused.value
    )
    # The real seam says the same if it is ever called without the tool.
    record = SubprocessRunner().run(erase_argv(UDID), 10)
    assert (
        record.returncode == NOT_FOUND
        and parse_erase(record).reason == "pymobiledevice3 is not installed on this bench"
    )


def test_an_unsupervised_ipad_is_not_erased_over_usb() -> None:
    runner, ctx = usb("ipad-usb-erase")
    probe = replace(probe_ipad(runner, UDID), supervised=False)
    with pytest.raises(PlanError, match="usb-supervised-erase: unsupported here: not supervised"):
        plan_reset(probe, ctx)
    assert not any(call[0] == "pymobiledevice3" for call in runner.calls)


@pytest.mark.parametrize(
    ("scenario", "kind", "reason"),
    [
        ("ipad-usb-erase-rejected", kinds.REFUSED, "The device rejected the profile request: {'Status': 'Error'"),
        ("ipad-usb-erase-locked", kinds.LOCKED, "Device is password protected. Please unlock and retry."),
        ("ipad-usb-erase-no-device", kinds.REFUSED, "Device not found: usbmux has no device matching udid " + UDID),
    ],
)
def test_an_erase_the_tool_could_not_send_fails_with_its_kind(scenario: str, kind: str, reason: str) -> None:
    runner, ctx = usb(scenario)
    report = run_reset(probe_ipad(runner, UDID), ctx, reprobe=reprobe)
    assert not report.result.ok and report.result.verification is None and report.result.level_achieved is None
    assert report.failure is not None and (report.failure.stage, report.failure.kind) == ("reset", kind)
    assert reason in (report.result.failure_reason or "")
    assert not any(c.argv[:2] == ("ideviceinfo", "-u") and "-s" in c.argv for c in report.result.commands)


def test_an_ipad_still_activated_after_the_erase_is_not_confirmed() -> None:
    runner, ctx = usb("ipad-usb-erase-still-activated")
    report = run_reset(probe_ipad(runner, UDID), ctx, reprobe=reprobe)
    assert not report.result.ok and report.failure is not None
    assert (report.failure.stage, report.failure.kind) == ("after the reset", kinds.NOT_CONFIRMED)
    assert "in setup state: still set up" in (report.result.failure_reason or "")


def test_an_ipad_that_never_leaves_usbmux_after_the_request_fails_timed_out() -> None:
    """Already unactivated or not, an iPad that never restarted did not erase: outcome unknown."""
    runner, ctx = usb("ipad-usb-erase-never-left")
    report = run_reset(probe_ipad(runner, UDID), ctx, reprobe=reprobe)
    assert not report.result.ok and report.failure is not None
    assert (report.failure.stage, report.failure.kind) == ("reset", kinds.TIMED_OUT)
    assert "never restarted into it" in (report.result.failure_reason or "")
    assert any("may not have run" in risk for risk in report.result.residual_risk)


def test_without_a_read_back_the_erase_over_usb_is_never_certified() -> None:
    """No reprobe on this bench: the tool's word alone is not a confirmation."""
    runner, ctx = usb("ipad-usb-erase")
    report = run_reset(probe_ipad(runner, UDID), ctx, reprobe=None)
    assert not report.result.ok and report.failure is not None and report.failure.kind == kinds.NOT_CONFIRMED
    assert "read after the reset" in (report.result.failure_reason or "")


def test_the_recorded_no_usbmuxd_answer_is_not_a_sent_request() -> None:
    stderr = (FIXTURES / "outputs" / "pymobiledevice3-erase-no-usbmuxd.txt").read_text()
    request = parse_erase(CommandRecord(tuple(erase_argv(UDID)), 1, "", stderr, "", ""))
    assert not request.sent and request.reason == "Failed to connect to usbmuxd socket. Make sure it's running."
    # An exit status of 0 with the error logged (pymobiledevice3 before 11) is no more a sent request.
    assert not parse_erase(CommandRecord(tuple(erase_argv(UDID)), 0, "", stderr, "", "")).sent


def test_an_ipad_erased_over_usb_is_certified_with_the_read_back_as_its_evidence(ctx) -> None:
    receive(ctx, SERIAL, [MediaSpec("nvme", UDID, 128 * 10**9)], make="Apple", model="iPad", kind="tablet")
    runner, reset = usb("ipad-usb-erase")
    request = TabletRequest(SERIAL, probe_ipad(runner, UDID), reset, "tech.one", "B1-T1", reprobe=reprobe)  # type: ignore[arg-type]

    outcome = sanitise_tablet(ctx, request)

    assert outcome.ok and state_of(ctx, SERIAL) == "sanitised"
    with session_scope(ctx.engine) as s:
        [cert] = s.exec(select(Certificate)).all()
        record = latest_tablet_round(s, SERIAL)
    doc = verify_certificate(json.loads(cert.envelope), load_public_key(ctx.settings)).certificate
    assert (doc["sanitisation"]["method"], doc["sanitisation"]["level_achieved"]) == (CRYPTO_RESET, "purge")
    assert ["pymobiledevice3", "profile", "erase-device"] in [c["argv"][:3] for c in doc["sanitisation"]["commands"]]
    assert record is not None and record.certified
    wipe = record.closing["wipe"]
    assert (wipe["path"], wipe["command_id"], wipe["acknowledgement"]) == (
        "usb (supervised iPad, MCInstall EraseDevice)",
        None,
        None,
    )
    assert record.closing["read_back"]["setup_complete"] is False
