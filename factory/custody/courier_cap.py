"""The per-wave courier cap: laptops going by courier may not exceed the wave's share."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, func, select

from factory.custody.lookups import linked
from factory.custody.models import (
    Allocation,
    AllocationChannel,
    AllocationStatus,
    Consignment,
    ConsignmentItem,
    ConsignmentStatus,
    Wave,
)
from factory.custody.statuses import WITH_HOLDER_OR_COURIER
from factory.kernel.errors import GuardRefused
from factory.kernel.models.device import DeviceKind


def check_courier_cap(session: Session, new: Sequence[Allocation]) -> None:
    """Per wave: laptops going by courier may not exceed the wave's share of laptops issued in it.

    :raises GuardRefused: the consignment would take a wave over its cap.
    """
    waves = {a.wave_id for a in new if a.wave_id is not None and a.device_kind == DeviceKind.LAPTOP}
    for wave_id in sorted(waves):
        wave = linked(session, Wave, wave_id)
        adding = sum(1 for a in new if a.wave_id == wave_id and a.device_kind == DeviceKind.LAPTOP)
        by_courier = _courier_laptops(session, wave_id) + adding
        in_person = _count(
            session,
            Allocation.wave_id == wave_id,
            Allocation.device_kind == DeviceKind.LAPTOP.value,
            Allocation.channel == AllocationChannel.IN_PERSON.value,
            Allocation.status == AllocationStatus.ISSUED.value,
        )
        total = in_person + by_courier
        if by_courier * 100 > wave.courier_cap_percent * total:
            raise GuardRefused(
                f"wave {wave.name}: {by_courier} of {total} laptops would be issued by courier "
                f"({by_courier * 100 / total:.1f}%), above the {wave.courier_cap_percent}% cap "
                f"({in_person} in person, {by_courier - adding} already by courier, {adding} in this consignment)"
            )


def _courier_laptops(session: Session, wave_id: int) -> int:
    """Laptops of the wave on their way by courier or delivered, plus those in open consignments."""
    sent = _count(
        session,
        Allocation.wave_id == wave_id,
        Allocation.device_kind == DeviceKind.LAPTOP.value,
        Allocation.channel == AllocationChannel.COURIER.value,
        col(Allocation.status).in_(WITH_HOLDER_OR_COURIER),
    )
    queued = session.exec(
        select(func.count())
        .select_from(ConsignmentItem)
        .join(Allocation, col(Allocation.id) == ConsignmentItem.allocation_id)
        .join(Consignment, col(Consignment.id) == ConsignmentItem.consignment_id)
        .where(
            Allocation.wave_id == wave_id,
            Allocation.device_kind == DeviceKind.LAPTOP.value,
            Allocation.status == AllocationStatus.ALLOCATED.value,
            Consignment.status == ConsignmentStatus.OPEN.value,
        )
    ).one()
    return sent + queued


def _count(session: Session, *conditions: object) -> int:
    return session.exec(select(func.count()).select_from(Allocation).where(*conditions)).one()  # type: ignore[arg-type]
