"""Issue 13's disposal and redistribution defects, each shown by a test that failed before the fix:
the same signature image for both parties, the waste transfer note's carrier registration and
recycler permit, and one rule for certificate destinations. (Issue 13's third rule, "batteries
only under a hazardous EWC code", was wrong in law and is gone: test_waste_note_law.py.)"""

from __future__ import annotations

import io
from dataclasses import replace

import pytest
from harness.custody_data import signature
from harness.domain import receive, sanitise, state_of, verifier
from pypdf import PdfReader

from factory.custody.service import WasteTransfer, add_device, collect, open_batch, redistribute, register_party
from factory.custody.views import certificate_serves, get_document
from factory.kernel.db.engine import session_scope
from factory.kernel.errors import GuardRefused, InvalidInput
from factory.kernel.models.parties import CustodianKind
from imaging.certificate import Destination

HAZARDOUS_WEEE = "16 02 13*"


def _transfer(**changes: object) -> WasteTransfer:
    base = WasteTransfer(
        containment="1 caged pallet", place="Loading bay, HQ", transferor_name="Alex Store",
        transferor_address="Police HQ, Northtown", transferor_signature=signature("ours"),
        transferee_signature=signature("theirs"), hierarchy_declaration=True, hazardous_note_reference="NORTHT/00002",
        carrier_name="Green Haulage Ltd", carrier_registration="CBDU123456", recycler_permit="EPR/AB1234CD",
    )  # fmt: skip
    return replace(base, **changes)


def _parties(ctx) -> None:
    with session_scope(ctx.engine) as s:
        register_party(s, kind=CustodianKind.RECYCLER, reference="WEEE-CO", name="Green Recycling Ltd",
                       address="Unit 4, Industrial Estate")  # fmt: skip
        register_party(s, kind=CustodianKind.SCHOOL, reference="SCH-1", name="Northtown Primary",
                       address="School Lane")  # fmt: skip


def _batch(ctx, ewc: str = HAZARDOUS_WEEE) -> int:
    with session_scope(ctx.engine) as s:
        return open_batch(s, recycler_reference="WEEE-CO", description="Waste laptops", ewc_code=ewc,
                          sic_code="84240", actor="admin.one").record.id or 0  # fmt: skip


def _certified(ctx, serial: str, destination: Destination) -> None:
    sanitise(ctx, receive(ctx, serial), destination=destination)


def _filled(ctx, serial: str = "W-1") -> int:
    _parties(ctx)
    _certified(ctx, serial, Destination.RECYCLING)
    batch_id = _batch(ctx)
    with session_scope(ctx.engine) as s:
        add_device(s, batch_id=batch_id, serial=serial, actor="admin.one", verifier=verifier(ctx))
    return batch_id


def _collect(ctx, batch_id: int, transfer: WasteTransfer) -> object:
    with session_scope(ctx.engine) as s:
        return collect(s, batch_id=batch_id, transfer=transfer, actor="admin.one", site="t", verifier=verifier(ctx))


def test_the_same_signature_image_for_both_parties_is_refused(ctx) -> None:
    batch_id = _filled(ctx)
    with pytest.raises(InvalidInput, match="the same image"):
        _collect(ctx, batch_id, _transfer(transferee_signature=signature("ours")))
    assert state_of(ctx, "W-1") == "awaiting_disposal"  # nothing moved


def test_waste_transfer_note_names_the_carrier_registration_and_recycler_permit(ctx) -> None:
    batch_id = _filled(ctx)
    for missing in ("carrier_name", "carrier_registration", "recycler_permit"):
        with pytest.raises(InvalidInput, match="the waste transfer note needs"):
            _collect(ctx, batch_id, _transfer(**{missing: " "}))
    _collect(ctx, batch_id, _transfer())
    with session_scope(ctx.engine) as s:
        from factory.custody.views import get_batch

        batch = get_batch(s, batch_id)
        assert (batch.carrier_registration, batch.recycler_permit) == ("CBDU123456", "EPR/AB1234CD")
        pdf = get_document(s, batch.wtn_document_id or 0).content
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    for needle in ("Green Haulage Ltd", "CBDU123456", "EPR/AB1234CD"):
        assert needle in text, needle


@pytest.mark.parametrize(
    ("made_for", "redistribution", "disposal"),
    [
        (Destination.EXTERNAL_REUSE, True, True),
        (Destination.RECYCLING, False, True),
        (Destination.INTERNAL_REUSE, False, False),
        (Destination.MANUFACTURER, False, False),
    ],
)
def test_one_rule_for_certificate_destinations(ctx, made_for, redistribution, disposal) -> None:
    """A certificate serves a departure whose exposure is no greater than the one it was made
    for (internal reuse < recycling < external reuse); the same rule for both departures."""
    assert certificate_serves(str(made_for), "redistribute") is redistribution
    assert certificate_serves(str(made_for), "dispose") is disposal
    _parties(ctx)
    _certified(ctx, "D-1", made_for)
    _certified(ctx, "D-2", made_for)
    batch_id = _batch(ctx)
    try:
        with session_scope(ctx.engine) as s:
            add_device(s, batch_id=batch_id, serial="D-1", actor="admin.one", verifier=verifier(ctx))
    except GuardRefused as exc:
        assert not disposal and f"made for '{made_for}'" in exc.reason
    else:
        assert disposal
    try:
        with session_scope(ctx.engine) as s:
            redistribute(s, organisation_reference="SCH-1", serials=["D-2"], actor="admin.one", site="t",
                         verifier=verifier(ctx))  # fmt: skip
    except GuardRefused as exc:
        assert not redistribution and f"made for '{made_for}'" in exc.reason
    else:
        assert redistribution
