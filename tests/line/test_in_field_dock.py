"""A device imported as already in the field comes back to a bench dock like any issued device:
booked back (its in-field allocation ended), erased with a certificate for its disk, then rebuilt.
One imported without its media is matched by its disk once a technician records the disk read off
it."""

from __future__ import annotations

from harness.bench_line import running_line
from harness.custody_data import entries, ledger_ok, officer
from harness.vehicle_tablet import dock
from sqlmodel import select

from factory.custody.models import Allocation
from factory.custody.service import import_csv
from factory.intake.service import MediaSpec, record_returned_media
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.kernel.models.certificate import Certificate
from factory.line.bench_config import simulated_config

DISK = 2 * 2**20
HEADER = "serial,asset_tag,kind,make,model,staff_number,media\n"


def _import(ctx: AppContext, rows: str) -> None:
    officer(ctx, "PC7001")
    with session_scope(ctx.engine) as s:
        assert import_csv(s, kind="devices", text=HEADER + rows, dry_run=False, actor="tech.one").kept


def _docked(ctx: AppContext, serial: str, disk: str, agent: str) -> list[str]:
    """Dock the disk on a one-slot line; the device's history once its job is done."""
    for line in running_line(ctx, simulated_config("1x1", agent=agent), None, disk_bytes=DISK, seed=7):
        dock(line.sim, disk, DISK)
        job = line.wait_job(timeout=60)
        assert job.pipeline == "return-sanitise-provision", job.reason
        return line.history(serial)
    raise AssertionError("the line did not run")


def _certified(ctx: AppContext, serial: str) -> int:
    with session_scope(ctx.engine) as s:
        return len(s.exec(select(Certificate).where(Certificate.device_serial == serial)).all())


def _allocation_status(ctx: AppContext) -> str:
    with session_scope(ctx.engine) as s:
        return s.exec(select(Allocation.status)).one()


def test_an_imported_laptop_docked_is_booked_back_and_certified(ctx: AppContext) -> None:
    _import(ctx, f"FD-1,,laptop,Dell,Latitude 5420,PC7001,sata-ssd:FD1DISK:{DISK}\n")
    history = _docked(ctx, "FD-1", "FD1DISK", "in-field-1")
    assert history[:4] == ["enrol_in_field", "return", "start_sanitise", "sanitised"], history
    assert _certified(ctx, "FD-1") == 1 and _allocation_status(ctx) == "returned"
    assert ledger_ok(ctx)


def test_an_imported_laptop_without_media_is_docked_once_its_disk_is_recorded(ctx: AppContext) -> None:
    _import(ctx, "FD-2,,laptop,Dell,Latitude 5420,PC7001,\n")
    with session_scope(ctx.engine) as s:
        record_returned_media(s, serial="FD-2", media=[MediaSpec("sata-ssd", "FD2DISK", DISK)], actor="tech.one")
    history = _docked(ctx, "FD-2", "FD2DISK", "in-field-2")
    assert history[:5] == ["enrol_in_field", "record_media", "return", "start_sanitise", "sanitised"], history
    assert _certified(ctx, "FD-2") == 1 and entries(ctx, "FD-2")[1].actor == "tech.one"
    assert ledger_ok(ctx)
