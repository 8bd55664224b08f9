"""The per-wave courier cap: laptops going by courier may not exceed the wave's share.

Courier dispatch is only for officers formally shielding, and at most a wave's cap (25% by
default, never more) of the laptops issued in a wave may go that way. Every courier allocation
belongs to a wave, so no consignment escapes the count. The page that packs a consignment shows
each wave's headroom (``headroom``) before it is saved; ``check_courier_cap`` refuses one that
would take a wave over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


@dataclass(frozen=True)
class CapHeadroom:
    """A wave's courier numbers: what the cap allows now, and with ``adding`` more laptops."""

    wave: str
    cap_percent: int
    in_person: int  # laptops of the wave issued in person
    by_courier: int  # laptops of the wave delivered, travelling or packed in an open consignment
    headroom: int  # laptops that may still go by courier now
    adding: int = 0  # laptops of the wave in the consignment being packed

    @property
    def allowed(self) -> bool:
        return self.adding <= self.headroom

    @property
    def left_after(self) -> int:
        return self.headroom - self.adding


def headroom(session: Session, wave: Wave, adding: int = 0) -> CapHeadroom:
    """The wave's courier cap figures, with ``adding`` laptops about to be packed."""
    wave_id = wave.id or 0
    by_courier = _courier_laptops(session, wave_id)
    in_person = _count(
        session,
        Allocation.wave_id == wave_id,
        Allocation.device_kind == DeviceKind.LAPTOP.value,
        Allocation.channel == AllocationChannel.IN_PERSON.value,
        Allocation.status == AllocationStatus.ISSUED.value,
    )
    return CapHeadroom(wave.name, wave.courier_cap_percent, in_person, by_courier,
                       _room(wave.courier_cap_percent, in_person, by_courier), adding)  # fmt: skip


def _room(cap: int, in_person: int, by_courier: int) -> int:
    """The most n with (by_courier + n) <= cap% of (in_person + by_courier + n)."""
    if cap >= 100:
        return 10**9
    return max(0, (cap * (in_person + by_courier) - 100 * by_courier) // (100 - cap))


def laptops_by_wave(allocations: Sequence[Allocation]) -> dict[int, int]:
    """How many laptops each wave has among these allocations."""
    out: dict[int, int] = {}
    for a in allocations:
        if a.wave_id is not None and a.device_kind == DeviceKind.LAPTOP:
            out[a.wave_id] = out.get(a.wave_id, 0) + 1
    return out


def check_courier_cap(session: Session, new: Sequence[Allocation]) -> list[CapHeadroom]:
    """Per wave: laptops going by courier may not exceed the wave's share of laptops issued in it.

    :raises GuardRefused: an allocation belongs to no wave, or the consignment would take a wave
        over its cap.
    """
    waveless = [str(a.id) for a in new if a.wave_id is None]
    if waveless:
        raise GuardRefused(
            f"allocation {', '.join(waveless)} belongs to no refresh wave: every courier allocation "
            "belongs to a wave, whose courier cap applies"
        )
    figures = []
    for wave_id, adding in sorted(laptops_by_wave(new).items()):
        figure = headroom(session, linked(session, Wave, wave_id), adding)
        if not figure.allowed:
            by_courier, total = figure.by_courier + adding, figure.in_person + figure.by_courier + adding
            raise GuardRefused(
                f"wave {figure.wave}: {by_courier} of {total} laptops would be issued by courier "
                f"({by_courier * 100 / total:.1f}%), above the {figure.cap_percent}% cap "
                f"({figure.in_person} in person, {figure.by_courier} already by courier, {adding} in this consignment)"
            )
        figures.append(figure)
    return figures


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
