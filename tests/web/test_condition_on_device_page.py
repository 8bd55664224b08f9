"""The auditor's device page shows why a returned device went where it went: the route its recorded
condition called for, with the reasons (issue 11: 'the board and the device page show why')."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from fastapi.testclient import TestClient
from harness.domain import receive
from harness.web import cheap_password_hashing, login, make_users  # noqa: F401 (autouse fixture)

from api.app import create_app
from factory.kernel.db.engine import session_scope
from factory.line.condition_rules import Condition, Thresholds
from factory.line.device_condition import record_condition
from hardware_drivers.battery import parse_uevent
from imaging.disk_health import parse_smartctl

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "condition"


def _condition() -> Condition:
    disk = parse_smartctl((FIXTURES / "smartctl-qemu-nvme.json").read_text())
    battery = parse_uevent((FIXTURES / "battery-bat0-uevent.txt").read_text())  # 52% of its design capacity
    return Condition(disks=(disk,), battery=battery, purchased_on=date(2024, 3, 1))


def test_the_device_page_shows_the_route_by_condition_and_why(ctx) -> None:
    device_id = receive(ctx, "COND-1", media=("COND-1-M1",))
    with session_scope(ctx.engine) as s:
        record_condition(s, device_id, _condition(), Thresholds(), actor="tech.one")
    make_users(ctx)
    with TestClient(create_app(ctx)) as client:
        login(client, "auditor1")
        page = client.get("/audit/devices/COND-1").text
    assert "Condition and route" in page
    assert "redistribution" in page and "battery holds 52% of its design capacity" in page


def test_a_device_with_no_recorded_condition_shows_no_route(ctx) -> None:
    receive(ctx, "COND-2", media=("COND-2-M1",))
    make_users(ctx)
    with TestClient(create_app(ctx)) as client:
        login(client, "auditor1")
        page = client.get("/audit/devices/COND-2").text
    assert "History of" in page and "Condition and route" not in page
