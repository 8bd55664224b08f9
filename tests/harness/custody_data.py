"""Shared set-up for the custody workflow tests: parties, ready devices, ledger look-ups."""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from sqlmodel import func, select

from factory.custody.acceptance import Acceptance
from factory.custody.allocation import allocate
from factory.custody.documents import Upload
from factory.custody.issue import approve_exception, issue_device, request_exception
from factory.custody.models import AllocationChannel
from factory.custody.people import register_officer
from factory.intake.service import MediaSpec
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.kernel.ledger.verify import verify_ledger
from factory.kernel.lifecycle.states import Event
from factory.kernel.models.custody_entry import CustodyEntry
from factory.kernel.models.device import Device
from harness.domain import move, receive, verifier

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR-signature-pad-strokes"
JPEG = b"\xff\xd8\xff\xe0" + b"photo-of-shredded-drive"


def signature(label: str = "sig") -> Upload:
    return Upload(PNG + label.encode(), "image/png", f"{label}.png")


def accept(name: str = "PC Jane Smith", pin: str | None = None) -> Acceptance:
    return Acceptance(name=name, pin=pin) if pin else Acceptance(name=name, signature=signature(name))


def ready(ctx: AppContext, serial: str, kind: str = "laptop", media: Sequence[str | MediaSpec] = ("M1",)) -> int:
    """A new-stock device provisioned and ready (``media`` as ``harness.domain.receive`` takes them)."""
    device_id = receive(ctx, serial, media, new_stock=True)
    if kind != "laptop":
        with session_scope(ctx.engine) as s:
            d = s.get(Device, device_id)
            assert d is not None
            d.kind = kind  # test seeding: the helper receives laptops only
            s.add(d)
    move(ctx, device_id, Event.START_PROVISION, new_stock=True)
    move(ctx, device_id, Event.PROVISIONED)
    return device_id


def officer(ctx: AppContext, staff_number: str = "PC1001", pin: str | None = None) -> str:
    with session_scope(ctx.engine) as s:
        register_officer(s, staff_number=staff_number, name="Jane Smith", team="Response A", pin=pin)
    return staff_number


def allocated(
    ctx: AppContext,
    serial: str,
    staff_number: str,
    *,
    channel: AllocationChannel = AllocationChannel.IN_PERSON,
    wave: str | None = None,
    kind: str = "laptop",
    media: Sequence[str | MediaSpec] = ("M1",),
) -> int:
    ready(ctx, serial, kind, media)
    with session_scope(ctx.engine) as s:
        return (
            allocate(
                s, serial=serial, actor="tech.one", staff_number=staff_number, channel=channel, wave=wave
            ).record.id
            or 0
        )


def issue_first(
    ctx: AppContext,
    serial: str,
    staff_number: str,
    wave: str | None = None,
    acceptance: Acceptance | None = None,
    media: Sequence[str | MediaSpec] = ("M1",),
) -> int:
    """An officer's first device: issued under an approved exception (nothing to exchange); its allocation."""
    allocation_id = allocated(ctx, serial, staff_number, wave=wave, media=media)
    check = verifier(ctx)  # before the unit of work: the key registry is read in a transaction of its own
    with session_scope(ctx.engine) as s:
        approval = request_exception(
            s, allocation_id=allocation_id, reason="new starter", requested_by="tech.one"
        ).record
        approve_exception(s, approval_id=approval.id or 0, approver="admin.one")
        issue_device(s, allocation_id=allocation_id, acceptance=acceptance or accept(), actor="tech.one",
                     verifier=check, approval_id=approval.id)  # fmt: skip
    return allocation_id


def officer_with_device(ctx: AppContext, staff_number: str, serial: str, pin: str = "4321") -> None:
    """An officer with a PIN whose first device was issued on that PIN."""
    officer(ctx, staff_number, pin=pin)
    issue_first(ctx, serial, staff_number, acceptance=accept(pin=pin))


def entries(ctx: AppContext, serial: str | None = None) -> list[CustodyEntry]:
    with session_scope(ctx.engine) as s:
        stmt = select(CustodyEntry).order_by(CustodyEntry.seq)  # type: ignore[arg-type]
        if serial is not None:
            stmt = stmt.where(CustodyEntry.device_serial == serial)
        return list(s.exec(stmt).all())


def last_evidence(ctx: AppContext, serial: str) -> dict[str, object]:
    return orjson.loads(entries(ctx, serial)[-1].evidence)


def entry_count(ctx: AppContext) -> int:
    with session_scope(ctx.engine) as s:
        return s.exec(select(func.count()).select_from(CustodyEntry)).one()


def ledger_ok(ctx: AppContext) -> bool:
    report = verify_ledger(ctx.engine)
    assert report.ok, report.reason
    return True


def pooled(ctx: AppContext, serial: str, kind: str = "laptop", site: str = "test-site") -> int:
    """A ready spare stocked in the site's contingency pool of its kind (the pool made if missing)."""
    from factory.custody.models import ContingencyPool
    from factory.custody.service import create_pool, stock_spare

    device_id = ready(ctx, serial, kind)
    with session_scope(ctx.engine) as s:
        if not s.exec(
            select(ContingencyPool).where(ContingencyPool.site == site, ContingencyPool.kind == kind)
        ).first():
            create_pool(s, site=site, kind=kind, low_stock_level=1, actor="tech.one")
        stock_spare(s, site=site, serial=serial, actor="tech.one")
    return device_id
