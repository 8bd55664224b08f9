"""Shared set-up for courier dispatch: a refresh wave with laptops already issued in person (so its
courier cap has room), officers recorded as formally shielding and holding an old device, and
packed consignments."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from factory.custody.consignments import create_consignment, record_shielding
from factory.custody.lookups import get_consignment, get_officer
from factory.custody.models import AllocationChannel
from factory.custody.service import hand_over
from factory.custody.waves import create_wave
from factory.kernel import clock
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from harness.custody_data import allocated, issue_first, officer
from harness.domain import verifier

COURIER = AllocationChannel.COURIER
COURIER_NAME = "SecureParcel Ltd"


def wave_with_room(ctx: AppContext, name: str, in_person: int = 3) -> str:
    """A wave whose ``in_person`` laptops were issued at the counter: room for in_person // 3 by courier."""
    with session_scope(ctx.engine) as s:
        create_wave(s, name=name, cohort="Northtown station", target_devices=100)
    for n in range(in_person):
        issue_first(ctx, f"{name}-HAND-{n}", officer(ctx, f"{name}-H{n}"), wave=name)
    return name


def shielded_officer(ctx: AppContext, staff_number: str, old_serial: str | None = None) -> str:
    """An officer recorded as formally shielding; with ``old_serial``, holding that device (their old one)."""
    officer(ctx, staff_number)
    with session_scope(ctx.engine) as s:
        record_shielding(s, get_officer(s, staff_number), f"SHIELD-{staff_number}", "dispatch.one")
    if old_serial:
        issue_first(ctx, old_serial, staff_number)
    return staff_number


def courier_allocations(
    ctx: AppContext, serials: Sequence[str], staff_number: str, wave: str, kind: str = "tablet"
) -> list[int]:
    """Ready devices allocated for courier delivery to the officer (tablets unless told: outside the laptop cap)."""
    return [allocated(ctx, serial, staff_number, channel=COURIER, wave=wave, kind=kind) for serial in serials]


def packed(ctx: AppContext, allocation_ids: Sequence[int], seals: Sequence[str] = ("SEAL-1",)) -> str:
    """An open consignment of the allocations, sealed with ``seals``; its reference."""
    with session_scope(ctx.engine) as s:
        return create_consignment(
            s,
            allocation_ids=list(allocation_ids),
            courier=COURIER_NAME,
            recipient_name="Sgt Mary Jones",
            recipient_address="1 High Street, Northtown",
            seal_numbers=list(seals),
            actor="dispatch.one",
            site=ctx.settings.site_name,
        ).record.reference


def handed_over(ctx: AppContext, wave: str, staff_number: str, old_serial: str, serial: str) -> str:
    """A consignment of one tablet for a shielded officer (holding ``old_serial``) in ``wave``,
    sealed with ``SEAL-<serial>`` and handed to the courier; its reference."""
    seal = f"SEAL-{serial}"
    staff = shielded_officer(ctx, staff_number, old_serial)
    reference = packed(ctx, courier_allocations(ctx, [serial], staff, wave), [seal])
    keys = verifier(ctx)  # outside the unit of work: it may read the key registry
    with session_scope(ctx.engine) as s:
        hand_over(s, reference=reference, scanned_serials=[serial], scanned_seals=[seal], actor="courier.one",
                  verifier=keys)  # fmt: skip
    return reference


def handed_over_days_ago(ctx: AppContext, reference: str, days: int) -> None:
    """Moves the consignment's hand-over ``days`` back: the record the overdue reports read."""
    with session_scope(ctx.engine) as s:
        get_consignment(s, reference).handed_over_at = clock.format_utc(clock.now() - timedelta(days=days))
