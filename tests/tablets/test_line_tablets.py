"""Tablets on the bench line: an iPad, an Android and a Windows tablet arrive on bench hub ports
(the udev events a real hub gives, through the port map and the controller's one entry point),
each drives a job on the board with the tablet pipeline (identify, platform reset, enrol)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from harness.bench_line import SLOT, Line
from harness.domain import receive, state_of
from sqlmodel import col, select

from factory.intake.service import MediaSpec
from factory.intake.views import get_device
from factory.kernel.db.engine import session_scope
from factory.kernel.models.certificate import Certificate
from factory.kernel.site_keys import load_public_key
from factory.line import tablet_slots
from factory.line.bench_config import simulated_config
from factory.line.controller import Controller
from factory.line.identify import Identity
from factory.line.job_steps import NO_VEHICLE, NO_VEHICLE_ACTION
from factory.line.models import Job, JobLog, JobStep
from factory.line.simulate import NoOpProvisioner, SimulatedLine
from factory.line.simulate_tablets import USB, SimTablet, SimulatedTablets, arrival_event, new_tablet
from factory.line.views import board_snapshot, job_detail
from factory.tablets.views import latest_tablet_round
from hardware_drivers.events import DeviceAttached
from imaging.certificate import verify_certificate
from imaging.tablets.failure import ACTIONS, NOT_ACKNOWLEDGED, NOT_ENCRYPTED
from imaging.tablets.methods import CRYPTO_RESET


class TabletLine(Line):
    """The bench line with the simulated tablets on its hub ports."""

    def steps(self, job_id: int) -> list[tuple[str, str]]:
        with session_scope(self.controller.engine) as s:
            rows = s.exec(select(JobStep).where(JobStep.job_id == job_id).order_by(col(JobStep.position))).all()
            return [(r.name, r.status) for r in rows]


@pytest.fixture
def tablet_line(ctx) -> Iterator[TabletLine]:
    config = replace(simulated_config("1x3", agent="tablet-agent"), erase_processes=0)
    tablets = SimulatedTablets()
    holder: dict[str, SimulatedLine] = {}
    controller = Controller(
        ctx, config, provisioner=NoOpProvisioner(), present=lambda: holder["sim"].present(), tablets=tablets.bench()
    )
    sim = SimulatedLine(ctx, config, controller.submit, auto=False, seed=12, tablets=tablets)
    holder["sim"] = sim
    controller.start()
    try:
        yield TabletLine(ctx, controller, sim)
    finally:
        controller.stop(drain_seconds=5)


def test_ipad_android_and_windows_tablets_flow_through_the_line(tablet_line: TabletLine) -> None:
    arrived = {
        platform: tablet_line.sim.arrive(f"bench-1/slot-{n}", Identity.RETURNED, kind="tablet", platform=platform)
        for n, platform in enumerate(("ipados", "android", "windows"), start=1)
    }
    assert tablet_line.controller.wait_idle(60)

    for n, platform in enumerate(arrived, start=1):
        job = tablet_line.job(f"bench-1/slot-{n}")
        assert (job.status, job.pipeline) == ("succeeded", f"{platform} tablet sanitise-provision"), job.reason
        assert tablet_line.steps(job.id or 0) == [
            ("identify tablet", "succeeded"),
            ("sanitise (platform reset)", "succeeded"),
            ("enrol (device management)", "succeeded"),
        ]
    with session_scope(tablet_line.controller.engine) as s:
        methods = {c.device_serial: c.method for c in s.exec(select(Certificate)).all()}
        ipad = latest_tablet_round(s, arrived["ipados"].device_serial or "")
    assert methods[arrived["ipados"].device_serial] == CRYPTO_RESET
    assert methods[arrived["android"].device_serial] == CRYPTO_RESET
    assert methods[arrived["windows"].device_serial] == "eMMC secure erase + sanitize"
    assert ipad is not None and ipad.certified and ipad.before["platform"] == "ipados"
    assert ipad.closing["wipe"]["service"] == "apple-mdm"

    assert tablet_line.sim.depart("bench-1/slot-1")  # the iPad unplugged: its UDID-spelt serial frees the slot
    assert tablet_line.controller.wait_idle(30)
    slot = tablet_line.controller.slot("bench-1/slot-1")
    assert slot is not None and (slot.attachment_id, slot.error) == (None, None)


def test_a_tablet_job_is_live_on_the_board(tablet_line: TabletLine) -> None:
    tablet_line.sim.arrive(SLOT, Identity.RETURNED, kind="vehicle-tablet", platform="android")
    assert tablet_line.controller.wait_idle(60)
    with session_scope(tablet_line.controller.engine) as s:
        board = board_snapshot(s)
        [slot] = [sl for sl in board["benches"][0]["slots"] if sl["code"] == SLOT]
        detail = job_detail(s, slot["job"]["id"])
    assert slot["job"]["pipeline"] == "android tablet sanitise-provision"
    assert [step["name"] for step in detail["steps"]] == [
        "identify tablet",
        "sanitise (platform reset)",
        "enrol (device management)",
    ]


def test_a_vehicle_tablet_with_no_vehicle_is_wiped_but_not_enrolled(tablet_line: TabletLine) -> None:
    arrived = tablet_line.sim.arrive(SLOT, Identity.RETURNED, kind="vehicle-tablet", platform="android")
    assert tablet_line.controller.wait_idle(60)
    job = tablet_line.job(SLOT)
    assert (job.status, job.reason, job.action) == ("held", NO_VEHICLE, NO_VEHICLE_ACTION)
    assert tablet_line.steps(job.id or 0)[-1] == ("enrol (device management)", "skipped")
    assert state_of(tablet_line.ctx, arrived.device_serial or "") == "sanitised"  # reset and certified, not built


def test_a_tablet_without_usb_debugging_holds_its_job_with_the_action(tablet_line: TabletLine) -> None:
    receive(tablet_line.ctx, "R52MTP000001", [MediaSpec("ufs", "R52MTP000001", 64 * 10**9)], kind="tablet")
    # A returned tablet with debugging off: MTP only, no ADB interface on the hub port.
    tablet_line.controller.submit(
        DeviceAttached(
            subsystem="usb",
            sys_path="/sys/devices/sim/mtp",
            device_node=None,
            devtype="usb_device",
            serial="R52MTP000001",
            vendor="Samsung",
            model="SM-T505",
            id_path="sim-bench-1-port-1",
            bench_port=None,
            size_bytes=None,
            vendor_id="04e8",
            product_id="6860",
            usb_interfaces=":ffff00:",
        )
    )
    assert tablet_line.controller.wait_idle(30)
    job = tablet_line.job(SLOT)
    assert (job.status, job.reason) == ("held", "android tablet in mtp-only mode")
    assert "enable Developer options > USB debugging" in (job.action or "")
    assert state_of(tablet_line.ctx, "R52MTP000001") == "received"  # untouched


def test_a_line_without_tablet_settings_holds_tablet_jobs(ctx) -> None:
    config = replace(simulated_config("1x1", agent="no-tablets"), erase_processes=0)
    tablets = SimulatedTablets()  # the tablets exist, but the line has no bench settings for them
    controller = Controller(ctx, config, provisioner=NoOpProvisioner())
    sim = SimulatedLine(ctx, config, controller.submit, auto=False, seed=3, tablets=tablets)
    controller.start()
    try:
        sim.arrive(SLOT, Identity.RETURNED, kind="tablet", platform="ipados")
        assert controller.wait_idle(30)
        with session_scope(controller.engine) as s:
            job = s.exec(select(Job).order_by(col(Job.id).desc())).first()
    finally:
        controller.stop(drain_seconds=5)
    assert job is not None and (job.status, job.reason) == ("held", "no tablet settings on this line")
    assert "--tablets FILE" in (job.action or "")


def test_an_unknown_tablet_is_quarantined_as_a_tablet(tablet_line: TabletLine) -> None:
    arrived = tablet_line.sim.arrive(SLOT, Identity.UNKNOWN, kind="tablet", platform="android")
    assert tablet_line.controller.wait_idle(30)
    job = tablet_line.job(SLOT)
    assert (job.status, job.pipeline) == ("held", "quarantine")
    with session_scope(tablet_line.controller.engine) as s:
        device = get_device(s, arrived.disk_serial)  # booked in under the serial the hub reported
        assert (device.kind, device.state) == ("tablet", "quarantined")


def test_a_restarted_controller_recognises_the_tablet_still_in_its_slot(ctx, tablet_line: TabletLine) -> None:
    tablet_line.sim.arrive(SLOT, Identity.RETURNED, kind="tablet", platform="ipados")
    assert tablet_line.controller.wait_idle(60)
    first = tablet_line.job(SLOT)
    tablet_line.controller.stop(drain_seconds=5)
    config = replace(simulated_config("1x3", agent="tablet-agent"), erase_processes=0)
    again = Controller(ctx, config, present=tablet_line.sim.present, tablets=tablet_line.controller.tablets)
    report = again.start()
    try:
        assert again.wait_idle(30)
        assert (report.attached, report.freed) == ([], []), (
            report.summary()
        )  # the same iPad, recorded as it arrived: no new job
    finally:
        again.stop(drain_seconds=5)
        tablet_line.controller = again  # the fixture stops it again (harmless)
    assert tablet_line.job(SLOT).id == first.id


def plug(line: TabletLine, tablet: SimTablet, medium: MediaSpec) -> Job:
    """Book the tablet in, plug it into the first slot's hub port, and return its finished job."""
    receive(line.ctx, tablet.serial, [medium], make=USB[tablet.platform][3], kind="tablet")
    assert line.sim.tablets is not None
    line.sim.tablets.add(tablet)
    line.controller.submit(arrival_event(tablet, "sim-bench-1-port-1"))
    assert line.controller.wait_idle(60)
    return line.job(SLOT)


def test_a_windows_tablet_emmc_without_sanitize_is_overwritten_and_certified_clear(
    tablet_line: TabletLine, tmp_path: Path
) -> None:
    """The planner falls from eMMC secure erase + sanitize to the erase engine's overwrite of the eMMC
    the bench sees as a block device (here a file): the same erase and verification as a disk's."""
    tablet = replace(new_tablet("windows", 0x5A5A0001), emmc_sanitize=False, emmc_image=tmp_path / "emmc.img")
    assert tablet.emmc_image is not None
    tablet.emmc_image.write_bytes(b"OFFICER NOTES: custody 4411 " * (2 * 2**20 // 28))
    job = plug(tablet_line, tablet, MediaSpec("emmc", tablet.ref, tablet.emmc_image.stat().st_size))
    assert job.status == "succeeded", job.reason
    assert tablet_line.steps(job.id or 0)[1] == ("sanitise (platform reset)", "succeeded")
    assert b"OFFICER NOTES" not in tablet.emmc_image.read_bytes()  # the engine really overwrote it
    with session_scope(tablet_line.controller.engine) as s:
        [cert] = s.exec(select(Certificate).where(Certificate.device_serial == tablet.serial)).all()
        record = latest_tablet_round(s, tablet.serial)
    doc = verify_certificate(json.loads(cert.envelope), load_public_key(tablet_line.ctx.settings)).certificate
    sanitisation = doc["sanitisation"]
    assert (sanitisation["technique"], sanitisation["level_achieved"]) == ("overwrite", "clear")
    assert doc["verification"]["passed"] is True and doc["verification"]["mismatches"] == 0
    assert any(
        r.startswith("eMMC without sanitize, overwritten from the host: Clear only") for r in doc["residual_risk"]
    )
    argv = [c["argv"][:3] for c in sanitisation["commands"]]
    assert ["mmc", "extcsd", "read"] in argv and not any(a[:2] == ["mmc", "sanitize"] for a in argv)
    assert record is not None and record.certified
    assert record.closing["wipe"]["path"] == "erase engine (overwrite)"
    assert record.closing["method"] == cert.method


def failed_round(line: TabletLine, job: Job, serial: str) -> dict:
    """The failed job as the board shows it, and the failure its round's closing entry records."""
    with session_scope(line.controller.engine) as s:
        [slot] = [sl for sl in board_snapshot(s)["benches"][0]["slots"] if sl["code"] == SLOT]
        record = latest_tablet_round(s, serial)
    assert (job.status, slot["job"]["reason"], slot["job"]["action"]) == ("failed", job.reason, job.action)
    assert record is not None and record.closed_event == "fail" and not record.certified
    assert state_of(line.ctx, serial) == "sanitise_failed"
    assert record.closing["failure"]["action"] == job.action
    return record.closing["failure"]


def test_an_unencrypted_tablet_fails_its_reset_with_structured_evidence(tablet_line: TabletLine) -> None:
    tablet = new_tablet("android", 0x0BADF00D, encrypted=False)
    job = plug(tablet_line, tablet, MediaSpec("ufs", tablet.ref, 64 * 10**9))
    assert (job.reason or "").startswith(f"android tablet {tablet.serial}: no sanitisation method")
    assert job.action == ACTIONS[NOT_ENCRYPTED]
    failure = failed_round(tablet_line, job, tablet.serial)
    assert (failure["step"], failure["stage"], failure["kind"]) == ("sanitise (platform reset)", "plan", NOT_ENCRYPTED)
    assert "not encrypted (ro.crypto.state=unencrypted" in failure["reason"]
    assert failure["command"]["argv"][:3] == ["adb", "-s", tablet.usb_serial]  # the last reading before the plan


def test_a_wipe_the_service_reports_failed_fails_the_round_with_its_status(tablet_line: TabletLine) -> None:
    tablet = replace(new_tablet("android", 0x0DEC1DED), wipe_error=("MANAGEMENT_MODE", "not in a management mode"))
    job = plug(tablet_line, tablet, MediaSpec("ufs", tablet.ref, 64 * 10**9))
    assert "WIPE failed: not in a management mode MANAGEMENT_MODE" in (job.reason or "")
    assert job.action == ACTIONS[NOT_ACKNOWLEDGED]
    failure = failed_round(tablet_line, job, tablet.serial)
    assert (failure["stage"], failure["kind"]) == ("reset", NOT_ACKNOWLEDGED)
    service = failure["service"]
    assert (service["service"], service["state"]) == ("android-management", "error")
    assert service["command_id"].endswith("/operations/1")
    assert failure["command"]["argv"][:2] == ["https", "GET"] and failure["command"]["returncode"] == 200
    with session_scope(tablet_line.controller.engine) as s:
        logged = [line.message for line in s.exec(select(JobLog).where(JobLog.job_id == job.id)).all()]
    assert any(m.startswith("failure evidence: ") and '"kind": "not acknowledged"' in m for m in logged)


def test_a_supervised_ipad_the_mdm_does_not_reach_is_erased_over_usb_on_the_line(tablet_line: TabletLine) -> None:
    """No MDM record for it: the planner falls to the erase over USB (the bench's pymobiledevice3),
    the iPad restarts (its leaving the hub port is not a removal) and is read back unactivated."""
    tablet = replace(new_tablet("ipados", 0x00C0FFEE), mdm_enrolled=False)
    job = plug(tablet_line, tablet, MediaSpec("nvme", tablet.ref, 128 * 10**9))
    assert job.status == "succeeded", job.reason
    with session_scope(tablet_line.controller.engine) as s:
        [cert] = s.exec(select(Certificate).where(Certificate.device_serial == tablet.serial)).all()
        record = latest_tablet_round(s, tablet.serial)
    assert cert.method == CRYPTO_RESET and record is not None and record.certified
    assert record.closing["wipe"]["path"] == "usb (supervised iPad, MCInstall EraseDevice)"
    assert record.closing["wipe"]["service"] is None and record.closing["read_back"]["setup_complete"] is False


def _reboot_handled_late(tablet_line: TabletLine, dev: object) -> None:
    """The tablet's restart (udev: remove, add) reaching the controller only after its job ended."""
    tablet = tablet_line.sim.tablets.find(dev.disk_serial)  # type: ignore[attr-defined, union-attr]
    assert tablet is not None
    [slot] = [sl for sl in tablet_line.sim.slots if sl.code == SLOT]
    tablet_line.controller.submit(arrival_event(tablet, slot.id_path, attached=False))
    tablet_line.controller.submit(arrival_event(tablet, slot.id_path))
    assert tablet_line.controller.wait_idle(30)


def test_a_tablet_back_from_its_restart_after_its_job_ended_rejoins_that_job(tablet_line: TabletLine) -> None:
    dev = tablet_line.sim.arrive(SLOT, Identity.RETURNED, kind="tablet", platform="android")
    assert tablet_line.controller.wait_idle(60)
    done = tablet_line.job(SLOT)
    assert done.status == "succeeded", done.reason
    _reboot_handled_late(tablet_line, dev)
    assert tablet_line.job(SLOT).id == done.id  # no new job held with "already provisioned"
    slot = tablet_line.controller.slot(SLOT)
    assert slot is not None and (slot.attachment_id, slot.device_id) == (done.attachment_id, done.device_id)


def test_a_tablet_back_after_the_restart_window_gets_a_new_job(
    tablet_line: TabletLine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tablet_slots, "RESTART_WINDOW_SECONDS", 0.0)  # every return is past it
    dev = tablet_line.sim.arrive(SLOT, Identity.RETURNED, kind="tablet", platform="android")
    assert tablet_line.controller.wait_idle(60)
    done = tablet_line.job(SLOT)
    _reboot_handled_late(tablet_line, dev)
    again = tablet_line.job(SLOT)
    assert again.id != done.id
    assert (again.status, again.reason) == ("held", "already provisioned: nothing to do (state 'ready')")


def test_a_held_vehicle_tablet_back_from_its_restart_keeps_its_held_job(tablet_line: TabletLine) -> None:
    dev = tablet_line.sim.arrive(SLOT, Identity.RETURNED, kind="vehicle-tablet", platform="android")
    assert tablet_line.controller.wait_idle(60)
    held = tablet_line.job(SLOT)
    assert (held.status, held.reason) == ("held", NO_VEHICLE)  # reset and certified, then held at enrolment
    _reboot_handled_late(tablet_line, dev)  # back with USB debugging off, as a reset leaves it
    again = tablet_line.job(SLOT)
    assert (again.id, again.reason, again.action) == (held.id, NO_VEHICLE, NO_VEHICLE_ACTION)
