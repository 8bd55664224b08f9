"""A vehicle tablet with its custody as the workflows record it: received new, provisioned,
allocated to a registered vehicle and installed in it by the contractor; or received new and
earmarked for its vehicle before its build; and its disk docked on a simulated bench slot (the way
a tablet brought back from the vehicle, or a new one, arrives)."""

from __future__ import annotations

from pathlib import Path

from factory.custody.service import allocate, build_for_vehicle, install_tablet, register_vehicle
from factory.intake.service import MediaSpec
from factory.kernel import clock
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.kernel.lifecycle.states import Event
from factory.line.simulate import SimulatedLine
from harness.domain import move, receive, verifier


def installed_vehicle_tablet(
    ctx: AppContext, serial: str, disk_serial: str, fleet_number: str, *, size: int, asset_tag: str | None = None
) -> int:
    """The tablet's device id; the vehicle ``fleet_number`` is registered here."""
    device_id = new_vehicle_tablet(ctx, serial, disk_serial, fleet_number, size=size, asset_tag=asset_tag)
    for event in (Event.START_PROVISION, Event.PROVISIONED):
        move(ctx, device_id, event)
    with session_scope(ctx.engine) as s:
        allocation_id = allocate(s, serial=serial, actor="tech.one", fleet_number=fleet_number).record.id or 0
    with session_scope(ctx.engine) as s:
        install_tablet(
            s,
            allocation_id=allocation_id,
            installer_name="Sam Fitter",
            installer_company="Fleet Fit Ltd",
            installed_on=clock.now().date(),
            actor="tech.one",
            verifier=verifier(ctx),
        )
    return device_id


def new_vehicle_tablet(
    ctx: AppContext,
    serial: str,
    disk_serial: str,
    fleet_number: str,
    *,
    size: int,
    asset_tag: str | None = None,
    earmark: bool = False,
) -> int:
    """A vehicle tablet received new from the supplier (its device id), the vehicle ``fleet_number``
    registered; with ``earmark``, the tablet earmarked for that vehicle before its build."""
    media = [MediaSpec("sata-ssd", disk_serial, size)]
    device_id = receive(
        ctx, serial, media, new_stock=True, asset_tag=asset_tag, make="Getac", model="F110", kind="vehicle-tablet"
    )
    with session_scope(ctx.engine) as s:
        register_vehicle(s, fleet_number=fleet_number, registration="AB12 CDE")
    if earmark:
        with session_scope(ctx.engine) as s:
            build_for_vehicle(s, serial=serial, fleet_number=fleet_number, actor="tech.one")
    return device_id


def built(ctx: AppContext, device_id: int, fleet_number: str | None) -> None:
    """Provisioned as the line does it: the ``start_provision`` entry names the vehicle (if any)."""
    move(ctx, device_id, Event.START_PROVISION, evidence={"vehicle": fleet_number} if fleet_number else {})
    move(ctx, device_id, Event.PROVISIONED)


def dock(sim: SimulatedLine, disk_serial: str, size: int, slot_index: int = 0) -> Path:
    """Put the tablet's disk (with data on it) in a slot and announce it as udev would."""
    slot = sim.slots[slot_index]
    path = sim.slot_dir(slot) / f"{disk_serial}.img"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"vehicle log data" * (size // 16))
    sim.submit(sim.event_for(slot, path))
    return path
