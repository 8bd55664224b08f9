"""Reads of WEEE disposal batches for the technicians' pages: the list, and one batch with its
devices and what may be done to it now (flags from the batch's status table, so pages compare no
status names). Re-exported by views.py."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from factory.custody.disposal import batch_devices
from factory.custody.lookups import get_batch, linked
from factory.custody.models import DisposalBatch
from factory.custody.statuses import BatchStep, allows
from factory.custody.waste_note import DEVICE_WASTE_CODES, is_hazardous
from factory.kernel.models.parties import Custodian


@dataclass(frozen=True)
class BatchView:
    id: int
    status: str
    recycler: str
    recycler_reference: str
    description: str
    ewc_code: str
    ewc_entry: str  # the List of Wastes' words for the code ("" for a code outside the device list)
    hazardous_code: bool  # so a consignment note code is needed at collection
    sic_code: str
    contains_batteries: bool
    device_count: int
    created_at: str
    collected_at: str | None
    carrier: str | None
    recycler_permit: str | None
    recycler_certificate_ref: str | None
    wtn_document_id: int | None
    can_fill: bool
    can_collect: bool
    can_account: bool
    can_close: bool


@dataclass(frozen=True)
class BatchItemView:
    serial: str
    kind: str
    state: str | None
    accounted: bool  # the recycler's certificate accounts for it


def _view(session: Session, batch: DisposalBatch, count: int) -> BatchView:
    recycler = linked(session, Custodian, batch.recycler_id)
    carrier = f"{batch.carrier_name} ({batch.carrier_registration})" if batch.carrier_name else None
    return BatchView(
        id=batch.id or 0, status=batch.status, recycler=recycler.name, recycler_reference=recycler.reference,
        description=batch.description, ewc_code=batch.ewc_code, ewc_entry=DEVICE_WASTE_CODES.get(batch.ewc_code, ""),
        hazardous_code=is_hazardous(batch.ewc_code),
        sic_code=batch.sic_code, contains_batteries=batch.contains_batteries, device_count=count,
        created_at=batch.created_at, collected_at=batch.collected_at, carrier=carrier,
        recycler_permit=batch.recycler_permit, recycler_certificate_ref=batch.recycler_certificate_ref,
        wtn_document_id=batch.wtn_document_id, can_fill=allows(batch, BatchStep.FILL),
        can_collect=allows(batch, BatchStep.COLLECT), can_account=allows(batch, BatchStep.ACCOUNT),
        can_close=allows(batch, BatchStep.CLOSE),
    )  # fmt: skip


def disposal_batches(session: Session) -> list[BatchView]:
    """Every batch, newest first."""
    batches = session.exec(select(DisposalBatch).order_by(col(DisposalBatch.id).desc())).all()
    return [_view(session, b, len(batch_devices(session, b))) for b in batches]


def disposal_batch(session: Session, batch_id: int) -> tuple[BatchView, list[BatchItemView]]:
    """:raises NotFound: no such batch."""
    batch = get_batch(session, batch_id)
    rows = batch_devices(session, batch)
    items = [BatchItemView(d.serial, d.kind, d.state, i.disposed_seq is not None) for i, d in rows]
    return _view(session, batch, len(rows)), items
