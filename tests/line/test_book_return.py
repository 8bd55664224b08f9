"""A device booked back on a bench ends its allocation: the officer's laptop that comes back is no
longer recorded as with the officer (it stayed 'issued' before), and a tablet back from a vehicle
is still rebuilt for that vehicle."""

from __future__ import annotations

from harness.bench_line import running_line
from harness.custody_data import issue_first, officer
from harness.domain import move
from harness.vehicle_tablet import dock, installed_vehicle_tablet
from sqlmodel import select

from factory.custody.models import Allocation
from factory.custody.service import mark_returned
from factory.custody.views import vehicle_fleet_number
from factory.intake.service import MediaSpec
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.kernel.lifecycle.states import Event
from factory.line.bench_config import simulated_config

DISK = 2 * 2**20


def _issued_laptop(ctx: AppContext) -> int:
    """LT-1, whose disk the line docks, issued to a new officer: its allocation."""
    officer(ctx, "PC5001")
    return issue_first(ctx, "LT-1", "PC5001", media=[MediaSpec("sata-ssd", "LT1DISK", DISK)])


def _status(ctx: AppContext, allocation_id: int) -> str:
    with session_scope(ctx.engine) as s:
        return s.exec(select(Allocation.status).where(Allocation.id == allocation_id)).one()


def test_a_laptop_booked_back_on_a_bench_ends_its_allocation(ctx: AppContext) -> None:
    allocation_id = _issued_laptop(ctx)
    assert _status(ctx, allocation_id) == "issued"
    for line in running_line(ctx, simulated_config("1x1", agent="book-back"), None, disk_bytes=DISK, seed=5):
        dock(line.sim, "LT1DISK", DISK)
        job = line.wait_job(timeout=60)
        assert job.pipeline == "return-sanitise-provision", job.reason
        assert line.history("LT-1")[4:6] == ["issue", "return"]
    assert _status(ctx, allocation_id) == "returned"


def test_a_tablet_booked_back_from_its_vehicle_is_still_built_for_that_vehicle(ctx: AppContext) -> None:
    device_id = installed_vehicle_tablet(ctx, "VT-8", "VT8DISK", "FL-208", size=DISK)
    move(ctx, device_id, Event.RETURN)
    with session_scope(ctx.engine) as s:
        mark_returned(s, device_id)  # what the line's book-return step does with the return
    with session_scope(ctx.engine) as s:
        [allocation] = s.exec(select(Allocation).where(Allocation.device_id == device_id)).all()
        assert allocation.status == "returned"
        assert vehicle_fleet_number(s, device_id) == "FL-208"
