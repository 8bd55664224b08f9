"""Reads for the courier dispatch pages: the allocations that may be packed into a consignment
(with each officer's shielding record and wave), each wave's courier-cap headroom before and
after the devices chosen, and a consignment's devices with their officers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from sqlmodel import Session, col, select

from factory.custody.courier_cap import CapHeadroom, headroom, laptops_by_wave
from factory.custody.issue import usable_exceptions
from factory.custody.lookups import get_consignment
from factory.custody.models import Allocation, AllocationChannel, Consignment, ConsignmentItem, Officer, Wave
from factory.custody.statuses import UNFINISHED_CONSIGNMENT, AllocationStep, sources
from factory.kernel.lifecycle.states import Event
from factory.kernel.models.custody_entry import CustodyEntry
from factory.kernel.models.device import Device


@dataclass(frozen=True)
class ConsignableRow:
    """A courier allocation waiting to be packed, with what the packing page shows of it."""

    allocation_id: int
    serial: str
    asset_tag: str | None
    kind: str
    staff_number: str
    officer_name: str
    shielding_reference: str | None  # None: not recorded as formally shielding yet
    wave: str | None  # None only for allocations made before every courier allocation had a wave


@dataclass(frozen=True)
class DeliveryLine:
    """A device of a consignment with the officer it goes to (the delivery page pairs old devices by officer)."""

    serial: str
    staff_number: str
    officer_name: str
    old_serial: str | None = None  # the officer's old device collected when this one was delivered
    # An approved exception to the exchange rule, in words: still to use ("exception 7 (new starter),
    # approved by admin.one": it may go with no old device), or the one it was delivered under.
    exception: str | None = None


def consignable_allocations(session: Session) -> list[ConsignableRow]:
    """Courier allocations to officers, still allocated and in no unfinished consignment, by wave and serial."""
    packed = (
        select(ConsignmentItem.allocation_id)
        .join(Consignment, col(Consignment.id) == ConsignmentItem.consignment_id)
        .where(col(Consignment.status).in_(UNFINISHED_CONSIGNMENT))
    )
    rows = session.exec(
        select(Allocation, Device, Officer)
        .join(Device, col(Device.id) == Allocation.device_id)
        .join(Officer, col(Officer.id) == Allocation.officer_id)
        .where(
            Allocation.channel == AllocationChannel.COURIER.value,
            col(Allocation.status).in_(sources(AllocationStep.CONSIGN)),
            col(Allocation.id).not_in(packed),
        )
        .order_by(col(Allocation.wave_id), col(Device.serial))
    ).all()
    waves = {w.id: w.name for w in session.exec(select(Wave)).all()}
    return [
        ConsignableRow(
            allocation_id=a.id or 0,
            serial=d.serial,
            asset_tag=d.asset_tag,
            kind=d.kind,
            staff_number=o.staff_number,
            officer_name=o.name,
            shielding_reference=o.shielding_reference,
            wave=waves.get(a.wave_id) if a.wave_id is not None else None,
        )
        for a, d, o in rows
    ]


def cap_headroom(session: Session, allocation_ids: Sequence[int] = ()) -> list[CapHeadroom]:
    """Each wave with courier allocations waiting, and any wave of the chosen ones: its courier-cap
    figures with the chosen laptops added (unknown ids are left out: saving names them)."""
    chosen = [a for a in (session.get(Allocation, i) for i in allocation_ids) if a is not None]
    adding = laptops_by_wave(chosen)
    waiting = session.exec(
        select(Allocation.wave_id).where(
            Allocation.channel == AllocationChannel.COURIER.value,
            col(Allocation.status).in_(sources(AllocationStep.CONSIGN)),
            col(Allocation.wave_id).is_not(None),
        )
    ).all()
    wave_ids = sorted({w for w in waiting if w is not None} | set(adding))
    waves = [w for w in (session.get(Wave, i) for i in wave_ids) if w is not None]
    return [headroom(session, w, adding.get(w.id or 0, 0)) for w in sorted(waves, key=lambda w: w.name)]


def delivery_lines(session: Session, reference: str) -> list[DeliveryLine]:
    """The consignment's devices with their officers and, once delivered, the old device collected
    for each or the exception it went under (read back from the delivery's custody entry); before
    delivery, the approved exception a device may go under. By serial.

    :raises NotFound: no such consignment.
    """
    consignment = get_consignment(session, reference)
    rows = session.exec(
        select(Device.id, Device.serial, Officer.staff_number, Officer.name, Allocation.id)
        .select_from(ConsignmentItem)
        .join(Device, col(Device.id) == ConsignmentItem.device_id)
        .join(Allocation, col(Allocation.id) == ConsignmentItem.allocation_id)
        .join(Officer, col(Officer.id) == Allocation.officer_id)
        .where(ConsignmentItem.consignment_id == consignment.id)
        .order_by(col(Device.serial))
    ).all()
    delivered = session.exec(
        select(CustodyEntry.device_id, CustodyEntry.evidence).where(
            col(CustodyEntry.device_id).in_([r[0] for r in rows]), CustodyEntry.event == Event.DELIVER.value
        )
    ).all()
    old: dict[int, str] = {}
    went_under: dict[int, str] = {}
    for device_id, evidence in delivered:
        fields = orjson.loads(evidence)
        if fields.get("consignment") != consignment.reference:
            continue
        if fields.get("exchange_for"):
            old[device_id] = str(fields["exchange_for"])
        elif isinstance(fields.get("exception"), dict):
            went_under[device_id] = _exception_words(fields["exception"])
    waiting = {a: _exception_words(e.model_dump()) for a, e in usable_exceptions(session, [r[4] for r in rows]).items()}
    return [
        DeliveryLine(
            serial,
            staff,
            name,
            old.get(device_id),
            went_under.get(device_id) or (None if device_id in old else waiting.get(allocation_id)),
        )
        for device_id, serial, staff, name, allocation_id in rows
    ]


def _exception_words(exception: dict[str, object]) -> str:
    number = exception.get("approval_id", exception.get("id"))
    return f"exception {number} ({exception.get('reason')}), approved by {exception.get('approved_by')}"
