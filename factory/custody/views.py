"""Reads of the custody area: look-ups, consignment views for the courier pages, the open
allocation of a device, the consignment exception report, and wave and bench KPIs.

Pages and routes take what they show and what they may offer from here (flags such as
``can_hand_over``, seal numbers as a list), so they neither compare status names nor parse
storage formats.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from factory.custody.courier_cap import CapHeadroom
from factory.custody.courier_views import (
    ConsignableRow,
    DeliveryLine,
    cap_headroom,
    consignable_allocations,
    delivery_lines,
)
from factory.custody.destinations import certificate_serves
from factory.custody.disposal_views import BatchItemView, BatchView, disposal_batch, disposal_batches
from factory.custody.documents import COURIER_READABLE, read_document, sha256_hex
from factory.custody.exception_views import ExceptionRow, exception_allocation, open_exceptions
from factory.custody.kpi_window import BenchWindow, WaveWindow, window_kpis, working_hours
from factory.custody.kpis import BenchKpis, WaveKpis, bench_kpis, wave_kpis
from factory.custody.lookups import (
    get_allocation,
    get_approval,
    get_batch,
    get_consignment,
    get_destruction,
    get_document,
    get_officer,
    get_party,
    get_vehicle,
    get_wave,
)
from factory.custody.models import (
    Allocation,
    AllocationChannel,
    Consignment,
    ConsignmentItem,
    ConsignmentStatus,
    Vehicle,
)
from factory.custody.personalisation import PersonaliseDue, needs_of, personalisation_due
from factory.custody.pool_views import PoolLevel, low_pools, pool_levels
from factory.custody.statuses import (
    ACTIVE_CONSIGNMENT,
    OUT_WITH_COURIER,
    AllocationStatus,
    AllocationStep,
    ConsignmentStep,
    allows,
    sources,
)
from factory.custody.tech_views import (
    HeldDevice,
    PendingDestruction,
    asset_label,
    held_devices,
    pending_destructions,
    transfer_note,
    vehicle_allocation_for,
    vehicles_view,
)
from factory.custody.vehicle_builds import TAKEN, Earmark, earmarked_fleet_number, earmarks
from factory.intake.views import get_device
from factory.kernel import clock
from factory.kernel.clock import format_utc
from factory.kernel.errors import InvalidInput, NotFound
from factory.kernel.models.device import Device

__all__ = [
    "COURIER_READABLE",
    "DEFAULT_OVERDUE_DAYS",
    "BatchItemView",
    "BatchView",
    "BenchKpis",
    "BenchWindow",
    "CapHeadroom",
    "ConsignableRow",
    "ConsignmentDetail",
    "ConsignmentException",
    "ConsignmentItemView",
    "ConsignmentView",
    "DeliveryLine",
    "Earmark",
    "ExceptionRow",
    "HeldDevice",
    "PendingDestruction",
    "PersonaliseDue",
    "PoolLevel",
    "WaveKpis",
    "WaveWindow",
    "active_consignments",
    "asset_label",
    "bench_kpis",
    "cap_headroom",
    "certificate_serves",
    "consignable_allocations",
    "consignment_detail",
    "consignment_items",
    "delivery_lines",
    "disposal_batch",
    "disposal_batches",
    "earmarks",
    "exception_allocation",
    "exception_report",
    "get_allocation",
    "get_approval",
    "get_batch",
    "get_consignment",
    "get_destruction",
    "get_document",
    "get_officer",
    "get_party",
    "get_vehicle",
    "get_wave",
    "held_devices",
    "list_consignments",
    "low_pools",
    "needs_of",
    "open_exceptions",
    "open_in_person_allocation",
    "pending_destructions",
    "personalisation_due",
    "pool_levels",
    "read_document",
    "seal_list",
    "sha256_hex",
    "transfer_note",
    "vehicle_allocation_for",
    "vehicle_fleet_number",
    "vehicles_view",
    "wave_kpis",
    "window_kpis",
    "working_hours",
]

DEFAULT_OVERDUE_DAYS = 3


@dataclass(frozen=True)
class ConsignmentView:
    """A consignment as pages show it, with what may be done to it now."""

    reference: str
    status: str
    courier: str
    recipient_name: str
    recipient_address: str
    seal_numbers: list[str]
    created_at: str
    handed_over_at: str | None
    delivered_at: str | None
    pod_recipient_name: str | None
    failure_reason: str | None
    manifest_document_id: int | None
    device_count: int
    is_open: bool  # packed, waiting for the courier
    can_hand_over: bool
    can_deliver: bool
    can_report_failure: bool
    can_return: bool


@dataclass(frozen=True)
class ConsignmentItemView:
    serial: str
    asset_tag: str | None
    kind: str
    state: str | None
    handed_over: str | None  # when the courier's scan took it
    delivered: str | None
    returned: str | None


@dataclass(frozen=True)
class ConsignmentDetail:
    consignment: ConsignmentView
    items: list[ConsignmentItemView]


@dataclass(frozen=True)
class ConsignmentException:
    reference: str
    problem: str  # "overdue", "missing_handover_scan", "missing_delivery_scan"
    detail: str
    device_serial: str | None = None


def seal_list(consignment: Consignment) -> list[str]:
    """The seal or bag numbers, stored comma-separated."""
    return [s for s in consignment.seal_numbers.split(",") if s]


def consignment_items(session: Session, consignment: Consignment) -> list[tuple[ConsignmentItem, Device]]:
    rows = session.exec(
        select(ConsignmentItem, Device)
        .join(Device, col(Device.id) == ConsignmentItem.device_id)
        .where(ConsignmentItem.consignment_id == consignment.id)
        .order_by(col(Device.serial))
    ).all()
    return [(item, device) for item, device in rows]


def list_consignments(session: Session, statuses: Sequence[str]) -> list[tuple[Consignment, int]]:
    """Consignments in the given statuses, newest first, each with its number of devices."""
    rows = session.exec(
        select(Consignment)
        .where(col(Consignment.status).in_(list(statuses)))
        .order_by(col(Consignment.created_at).desc())
    ).all()
    return [(c, len(consignment_items(session, c))) for c in rows]


# Consignment columns a view shows as stored.
_AS_STORED = frozenset(
    {"reference", "status", "courier", "recipient_name", "recipient_address", "created_at", "handed_over_at",
     "delivered_at", "pod_recipient_name", "failure_reason", "manifest_document_id"}
)  # fmt: skip


def consignment_view(consignment: Consignment, device_count: int) -> ConsignmentView:
    c = consignment
    return ConsignmentView(
        **c.model_dump(include=set(_AS_STORED)),
        seal_numbers=seal_list(c),
        device_count=device_count,
        is_open=c.status == ConsignmentStatus.OPEN,
        can_hand_over=allows(c, ConsignmentStep.HAND_OVER),
        can_deliver=allows(c, ConsignmentStep.DELIVER),
        can_report_failure=allows(c, ConsignmentStep.FAIL),
        can_return=allows(c, ConsignmentStep.RETURN),
    )


def active_consignments(session: Session) -> list[ConsignmentView]:
    """What a courier still has to act on (open, in transit, failed), newest first."""
    return [consignment_view(c, n) for c, n in list_consignments(session, ACTIVE_CONSIGNMENT)]


def consignment_detail(session: Session, reference: str) -> ConsignmentDetail:
    """:raises NotFound: no such consignment."""
    consignment = get_consignment(session, reference)
    rows = consignment_items(session, consignment)
    items = [
        ConsignmentItemView(
            serial=device.serial,
            asset_tag=device.asset_tag,
            kind=device.kind,
            state=device.state,
            handed_over=item.handover_scanned_at,
            delivered=item.delivery_scanned_at,
            returned=item.returned_at,
        )
        for item, device in rows
    ]
    return ConsignmentDetail(consignment=consignment_view(consignment, len(rows)), items=items)


def open_in_person_allocation(session: Session, serial: str) -> Allocation:
    """The device's open allocation for an in-person issue.

    :raises NotFound: no such device, or no open in-person allocation (the reason names its state).
    """
    device = get_device(session, serial)
    allocation = session.exec(
        select(Allocation).where(
            Allocation.device_id == device.id,
            col(Allocation.status).in_(sources(AllocationStep.ISSUE)),
            Allocation.channel == AllocationChannel.IN_PERSON.value,
        )
    ).first()
    if allocation is None:
        raise NotFound(f"device {device.serial} has no open in-person allocation (state '{device.state}')")
    return allocation


def vehicle_fleet_number(session: Session, device_id: int) -> str | None:
    """The fleet number of the in-service vehicle a vehicle tablet is built for, else None: the
    vehicle it is allocated to, on its way to or installed in; else the one it is earmarked for
    (a new tablet, or one re-earmarked after its return); else the one it came back from (its
    latest such allocation), so a tablet booked back from a vehicle is rebuilt for that vehicle."""
    return (
        _allocated_fleet_number(session, device_id, TAKEN)
        or earmarked_fleet_number(session, device_id)
        or _allocated_fleet_number(session, device_id, (AllocationStatus.RETURNED.value,))
    )


def _allocated_fleet_number(session: Session, device_id: int, statuses: Sequence[str]) -> str | None:
    return session.exec(
        select(Vehicle.fleet_number)
        .join(Allocation, col(Allocation.vehicle_id) == col(Vehicle.id))
        .where(
            Allocation.device_id == device_id,
            col(Allocation.status).in_(list(statuses)),
            col(Vehicle.decommissioned_at).is_(None),
        )
        .order_by(col(Allocation.id).desc())
    ).first()


def exception_report(
    session: Session, *, overdue_days: int = DEFAULT_OVERDUE_DAYS, now: datetime | None = None
) -> list[ConsignmentException]:
    """Consignments not delivered within N days of hand-over, and devices with a missing scan.

    :raises InvalidInput: negative days.
    """
    if overdue_days < 0:
        raise InvalidInput("overdue days must not be negative")
    cutoff = format_utc((now or clock.now()) - timedelta(days=overdue_days))
    out: list[ConsignmentException] = []
    active = session.exec(
        select(Consignment)
        .where(Consignment.status != ConsignmentStatus.OPEN.value)
        .order_by(col(Consignment.reference))
    ).all()
    for c in active:
        if c.status in OUT_WITH_COURIER and (c.handed_over_at or "") < cutoff:
            detail = f"handed over {c.handed_over_at}, not delivered within {overdue_days} days"
            out.append(ConsignmentException(c.reference, "overdue", detail))
        out += _missing_scans(session, c)
    return out


def _missing_scans(session: Session, c: Consignment) -> list[ConsignmentException]:
    out = []
    for item, device in consignment_items(session, c):
        if item.handover_scanned_at is None:
            out.append(
                ConsignmentException(
                    c.reference, "missing_handover_scan", "not scanned when the courier collected", device.serial
                )
            )
        elif c.delivered_at and item.delivery_scanned_at is None and item.returned_at is None:
            out.append(
                ConsignmentException(c.reference, "missing_delivery_scan", "not scanned at delivery", device.serial)
            )
    return out
