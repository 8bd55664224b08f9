"""Route by condition: disk health, battery wear and age read from the tools' real outputs
(tests/fixtures/condition/README.md), decided under the site's thresholds, recorded as evidence,
and a returned laptop routed on the line to redistribution with the reasons in its job log."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import orjson
import pytest
from harness.bench_line import running_line
from harness.custody_data import issue_first, officer
from harness.vehicle_tablet import dock
from sqlmodel import col, select

from factory.intake.service import MediaSpec
from factory.intake.views import get_device
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.kernel.errors import InvalidInput
from factory.kernel.models.custody_entry import CustodyEntry
from factory.line.bench_config import simulated_config
from factory.line.condition_rules import Condition, Route, Thresholds, decide
from factory.line.device_condition import latest_condition, record_condition
from factory.line.models import DeviceCondition, JobLog
from hardware_drivers.battery import parse_uevent, parse_upower
from hardware_drivers.dmi import parse_bios_date
from imaging.disk_health import HealthParseError, parse_nvme_smart_log, parse_smartctl

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "condition"
TODAY = date(2026, 12, 6)
DISK = 2 * 2**20


def _text(name: str) -> str:
    return (FIXTURES / name).read_text()


def _condition(**kw: object) -> Condition:
    disks = (parse_smartctl(_text("smartctl-qemu-sata.json")), parse_smartctl(_text("smartctl-qemu-nvme.json")))
    values: dict[str, object] = {"disks": disks, "battery": parse_uevent(_text("battery-bat0-uevent.txt"))}
    return Condition(**(values | kw))  # type: ignore[arg-type]


def test_disk_health_from_smartctl_and_nvme_cli_as_recorded_from_qemus_disks() -> None:
    sata = parse_smartctl(_text("smartctl-qemu-sata.json"))
    assert (sata.serial, sata.transport, sata.failing, sata.power_on_hours, sata.media_errors) == (
        "DFSATA0001", "ata", False, 1, 0,
    )  # fmt: skip
    assert sata.wear_percent is None  # QEMU's SATA disk has no wear attribute: unknown, not 0
    nvme = parse_smartctl(_text("smartctl-qemu-nvme.json"))
    assert (nvme.serial, nvme.transport, nvme.wear_percent, nvme.media_errors, nvme.failing) == (
        "DFNVME0001", "nvme", 0, 0, False,
    )  # fmt: skip
    log = parse_nvme_smart_log(_text("qemu-nvme-smart-log.json"), serial="DFNVME0001 ")
    assert (log.serial, log.wear_percent, log.media_errors, log.power_on_hours) == ("DFNVME0001", 0, 0, 0)
    with pytest.raises(HealthParseError, match="Unable to detect device type"):
        parse_smartctl(_text("smartctl-loop-no-device-type.json"))
    with pytest.raises(HealthParseError, match="not JSON"):
        parse_nvme_smart_log("NVMe status: Invalid Field in Command", serial="X")


def test_battery_wear_and_bios_age() -> None:
    sysfs, upower = parse_uevent(_text("battery-bat0-uevent.txt")), parse_upower(_text("upower-battery.txt"))
    assert (sysfs.capacity_percent, sysfs.cycle_count, sysfs.unit) == (52.0, 612, "uWh")
    assert (upower.capacity_percent, upower.cycle_count) == (52.0, 612)
    assert parse_bios_date(_text("qemu-bios-date.txt")) == date(2014, 4, 1)


def test_the_worst_measure_decides_the_route_with_its_reasons() -> None:
    bought = date(2024, 3, 1)
    battery_worn = decide(_condition(purchased_on=bought), Thresholds(), TODAY)
    assert battery_worn.route is Route.REDISTRIBUTION
    assert battery_worn.reasons == ("battery holds 52% of its design capacity (under 60%)",)
    # Without a purchase date the BIOS date (2014) says it is over eight years old: disposal.
    old = decide(_condition(bios_date=date(2014, 4, 1)), Thresholds(), TODAY)
    assert old.route is Route.DISPOSAL and old.reasons == ("12.7 years old (over 8), from BIOS date 2014-04-01",)
    fine = decide(_condition(purchased_on=bought), Thresholds(battery_reissue_min_percent=50), TODAY)
    assert fine.route is Route.REISSUE
    assert "disk DFNVME0001 0% worn" in fine.reasons and "battery holds 52% of its design capacity" in fine.reasons
    unknown = decide(Condition(), Thresholds(), TODAY)
    assert unknown.route is Route.REISSUE and "battery not reported" in unknown.reasons


def test_site_thresholds_come_from_the_routing_table(tmp_path: Path) -> None:
    site = tmp_path / "routing.toml"
    site.write_text("[routing]\nbattery_reissue_min_percent = 70\nage_reissue_max_years = 4\n")
    assert Thresholds.from_toml(site) == Thresholds(battery_reissue_min_percent=70, age_reissue_max_years=4)
    site.write_text('[routing]\nbattery_min = 70\nage_reissue_max_years = "old"\n')
    with pytest.raises(InvalidInput, match="unknown keys battery_min"):
        Thresholds.from_toml(site)


def _issued_laptop(ctx: AppContext) -> int:
    """LT-9, whose disk the line docks, issued to a new officer: its device id."""
    officer(ctx, "PC6001")
    issue_first(ctx, "LT-9", "PC6001", media=[MediaSpec("sata-ssd", "LT9DISK", DISK)])
    with session_scope(ctx.engine) as s:
        return get_device(s, "LT-9").id or 0


def test_a_returned_laptop_with_a_worn_battery_is_routed_to_redistribution(ctx: AppContext) -> None:
    device_id = _issued_laptop(ctx)
    with session_scope(ctx.engine) as s:
        decision = record_condition(s, device_id, _condition(purchased_on=date(2024, 3, 1)), Thresholds(), actor="t")
    assert decision.route is Route.REDISTRIBUTION
    with session_scope(ctx.engine) as s:
        recorded = latest_condition(s, device_id)
        assert recorded is not None and recorded.role == "redistribution"
        assert '"capacity_percent": 52.0' in s.exec(select(DeviceCondition.evidence)).one()  # the evidence as read
    for line in running_line(ctx, simulated_config("1x1", agent="routing"), None, disk_bytes=DISK, seed=9):
        dock(line.sim, "LT9DISK", DISK)
        job = line.wait_job(timeout=60)
        assert (job.pipeline, job.destination, job.status) == (
            "return-sanitise (by condition: redistribution)", "external_reuse", "succeeded",
        ), job.reason  # fmt: skip
        assert line.history("LT-9")[-3:] == ["return", "start_sanitise", "sanitised"]  # no provisioning for reissue
    with session_scope(ctx.engine) as s:
        logs = [r.message for r in s.exec(select(JobLog).where(JobLog.job_id == job.id).order_by(col(JobLog.id)))]
    why = "redistribution: battery holds 52% of its design capacity (under 60%)"
    assert f"routed by its condition to {why}" in logs
    with session_scope(ctx.engine) as s:  # and the signed return entry records it
        entry = s.exec(select(CustodyEntry).where(CustodyEntry.event == "return")).one()
    assert orjson.loads(entry.evidence)["condition"] == {"route": "redistribution", "why": why}
