"""The waste transfer note against the law (tests/custody/WASTE_RULES.md has the sources):
a laptop's lithium-ion battery does not make it hazardous waste, so it goes under 16 02 14 with
no consignment note; a consignment note code exactly when the EWC code is hazardous, in the
England and Wales or SEPA format, on one consignment only; EWC codes that are List of Wastes
entries for whole equipment (the asterisk is part of the code); the carrier's register number;
and the note naming each party's role. Each rule on both databases, and through the API."""

from __future__ import annotations

import base64
import io
from dataclasses import replace

import pytest
from harness.custody_data import PNG, last_evidence, signature
from harness.domain import receive, sanitise, state_of, verifier
from pypdf import PdfReader

from factory.custody.service import WasteTransfer, add_device, collect, open_batch, register_party
from factory.custody.views import get_batch, get_document
from factory.custody.waste_note import checked_carrier_registration, checked_ewc_code
from factory.identity.service import add_user
from factory.kernel.db.engine import session_scope
from factory.kernel.errors import Conflict, GuardRefused, InvalidInput
from factory.kernel.models.parties import CustodianKind
from imaging.certificate import Destination

NOTE = WasteTransfer(
    containment="1 caged pallet", place="Loading bay, HQ", transferor_name="Alex Store",
    transferor_address="Police HQ, Northtown", transferor_signature=signature("ours"),
    transferee_signature=signature("theirs"), hierarchy_declaration=True, carrier_name="Green Haulage Ltd",
    carrier_registration="CBDU123456", recycler_permit="EPR/AB1234CD",
)  # fmt: skip


def _batch(ctx, ewc: str, serials: dict[str, str]) -> int:
    """A batch under ``ewc`` holding certified devices (serial -> kind)."""
    for serial, kind in serials.items():
        sanitise(ctx, receive(ctx, serial, kind=kind), destination=Destination.RECYCLING)
    with session_scope(ctx.engine) as s:
        register_party(s, kind=CustodianKind.RECYCLER, reference="WEEE-CO", name="Green Recycling Ltd",
                       address="Unit 4, Industrial Estate")  # fmt: skip
        batch_id = open_batch(s, recycler_reference="WEEE-CO", description="Waste police laptops", ewc_code=ewc,
                              sic_code="84240", actor="admin.one").record.id or 0  # fmt: skip
        for serial in serials:
            outcome = add_device(s, batch_id=batch_id, serial=serial, actor="admin.one", verifier=verifier(ctx))
            assert [e.event for e in outcome.entries] == ["add_to_disposal"]  # every kind returns its outcome
    return batch_id


def _collect(ctx, batch_id: int, **changes: object) -> object:
    with session_scope(ctx.engine) as s:
        return collect(s, batch_id=batch_id, transfer=replace(NOTE, **changes), actor="admin.one", site="HQ",
                       verifier=verifier(ctx)).record  # fmt: skip


def _note_text(ctx, batch_id: int) -> str:
    with session_scope(ctx.engine) as s:
        pdf = get_document(s, get_batch(s, batch_id).wtn_document_id or 0).content
    return "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages).replace("\n", " ")


def test_laptops_and_tablets_with_lithium_batteries_go_as_non_hazardous_weee(ctx) -> None:
    """Before: a laptop or tablet was refused from any batch without a '*' code and collected only
    with a hazardous waste consignment note, so a site had to consign non-hazardous WEEE as hazardous."""
    batch_id = _batch(ctx, "16 02 14", {"LI-1": "laptop", "LI-2": "tablet", "LI-3": "vehicle-tablet"})
    batch = _collect(ctx, batch_id)
    assert (batch.contains_batteries, batch.hazardous_note_reference, batch.status) == (True, None, "collected")
    assert state_of(ctx, "LI-1") == state_of(ctx, "LI-2") == "with_recycler"
    assert "hazardous_consignment_note" not in last_evidence(ctx, "LI-1")
    text = _note_text(ctx, batch_id)
    for needle in (
        "EWC code 16 02 14",
        "discarded equipment other than those mentioned in 16 02 09 to 16 02 13",
        "Hazardous waste No",
        "Batteries Yes: left in the devices",
        "Transferor is The producer of the waste",
        "Transferor's SIC code (2007) 84240",
        "registered waste carrier (upper tier), registration CBDU123456",
        "registered exemption, number EPR/AB1234CD",
        "at least 2 years",
    ):
        assert needle in text, needle


def test_a_consignment_note_for_non_hazardous_waste_is_refused(ctx) -> None:
    batch_id = _batch(ctx, "16 02 14", {"LI-9": "laptop"})
    with pytest.raises(InvalidInput, match="'16 02 14' is not hazardous waste: a hazardous waste consignment note"):
        _collect(ctx, batch_id, hazardous_note_reference="NORTHT/00001")
    assert state_of(ctx, "LI-9") == "awaiting_disposal"  # nothing moved


def test_a_hazardous_code_needs_a_consignment_note_code_whatever_the_devices(ctx) -> None:
    """Desktops hold no battery (contains_batteries stays False), yet a '*' code is hazardous waste:
    before, such a batch was collected with no consignment note at all."""
    batch_id = _batch(ctx, "16 02 13*", {"PC-1": "desktop"})
    with pytest.raises(GuardRefused, match="'16 02 13\\*' is hazardous waste: a hazardous waste consignment note"):
        _collect(ctx, batch_id)
    with pytest.raises(InvalidInput, match="consignment note code 'HWCN-1' must be six letters or digits"):
        _collect(ctx, batch_id, hazardous_note_reference="HWCN-1")
    batch = _collect(ctx, batch_id, hazardous_note_reference="northt / 00001")
    assert (batch.contains_batteries, batch.hazardous_note_reference) == (False, "NORTHT/00001")
    assert "Hazardous waste Yes: moved under hazardous waste consignment note NORTHT/00001" in _note_text(ctx, batch_id)


def test_a_consignment_note_code_is_used_on_one_consignment_only(ctx) -> None:
    first = _batch(ctx, "16 02 13*", {"CC-1": "laptop"})
    _collect(ctx, first, hazardous_note_reference="SA1234567")  # a SEPA code (Scotland)
    sanitise(ctx, receive(ctx, "CC-2"), destination=Destination.RECYCLING)
    with session_scope(ctx.engine) as s:
        second = open_batch(s, recycler_reference="WEEE-CO", description="Old CCFL laptops", ewc_code="16 02 13*",
                            sic_code="84240", actor="admin.one").record.id or 0  # fmt: skip
        add_device(s, batch_id=second, serial="CC-2", actor="admin.one", verifier=verifier(ctx))
    with pytest.raises(Conflict, match=f"consignment note code SA1234567 is already on disposal batch {first}"):
        _collect(ctx, second, hazardous_note_reference="SA1234567")
    assert state_of(ctx, "CC-2") == "awaiting_disposal"


@pytest.mark.parametrize(
    ("entered", "refusal"),
    [
        ("16 02 13", "is not in the List of Wastes: a hazardous entry is '16 02 13\\*'"),
        ("16 02 14*", "is not in the List of Wastes: a non-hazardous entry is '16 02 14'"),
        ("16 06 05", "not an entry for whole discarded electrical equipment"),
        ("16 02", "must look like '16 02 14'"),
    ],
)
def test_an_ewc_code_that_is_no_list_of_wastes_entry_for_equipment_is_refused(ctx, entered, refusal) -> None:
    with session_scope(ctx.engine) as s:
        register_party(s, kind=CustodianKind.RECYCLER, reference="WEEE-CO", name="Green Recycling Ltd",
                       address="Unit 4, Industrial Estate")  # fmt: skip
    with pytest.raises(InvalidInput, match=refusal), session_scope(ctx.engine) as s:
        open_batch(s, recycler_reference="WEEE-CO", description="Waste laptops", ewc_code=entered, sic_code="84240",
                   actor="admin.one")  # fmt: skip


@pytest.mark.parametrize(
    ("entered", "stored"), [("160214", "16 02 14"), ("16-02-13*", "16 02 13*"), (" 20 01 36 ", "20 01 36")]
)
def test_an_ewc_code_is_stored_as_the_list_of_wastes_writes_it(entered: str, stored: str) -> None:
    assert checked_ewc_code(entered) == stored


def test_the_carrier_registration_is_one_of_a_register(ctx) -> None:
    """CB... is the EA and NRW register (CBDU upper tier, CBDL lower tier); a SEPA registration is
    taken as given. Before, any text was accepted."""
    assert checked_carrier_registration(" cbdl 12345 ") == "CBDL12345"
    assert checked_carrier_registration("WCR/R/1234567") == "WCR/R/1234567"
    batch_id = _batch(ctx, "16 02 14", {"CR-1": "laptop"})
    with pytest.raises(InvalidInput, match="carrier registration number 'CBD 123' is not one of"):
        _collect(ctx, batch_id, carrier_registration="CBD 123")
    assert _collect(ctx, batch_id, carrier_registration="cbdu 123456").carrier_registration == "CBDU123456"


def _b64(label: str) -> dict[str, str]:
    return {"media_type": "image/png", "content_base64": base64.b64encode(PNG + label.encode()).decode()}


def test_the_api_adds_a_desktop_and_answers_refusals_with_problem_details(ctx, client) -> None:
    """Adding a device without a battery answered 500 before (the step returned nothing for it)."""
    sanitise(ctx, receive(ctx, "API-PC", kind="desktop"), destination=Destination.RECYCLING)
    with session_scope(ctx.engine) as s:
        auth = {"Authorization": f"Bearer {add_user(s, 'admin1', 'admin')[1]}"}
        register_party(s, kind=CustodianKind.RECYCLER, reference="WEEE-CO", name="Green Recycling Ltd",
                       address="Unit 4, Industrial Estate")  # fmt: skip
    batch = {"recycler_reference": "WEEE-CO", "description": "Desktops", "ewc_code": "16 02 13", "sic_code": "84240"}
    r = client.post("/api/custody/disposal-batches", json=batch, headers=auth)
    assert r.status_code == 422 and "'16 02 13*'" in r.json()["detail"]
    batch_id = client.post("/api/custody/disposal-batches", json={**batch, "ewc_code": "16 02 14"}, headers=auth)
    batch_id = batch_id.json()["id"]
    r = client.post(f"/api/custody/disposal-batches/{batch_id}/devices/API-PC", headers=auth)
    assert r.status_code == 200 and [e["event"] for e in r.json()["entries"]] == ["add_to_disposal"]
    note = {"containment": "1 cage", "place": "Bay", "transferor_name": "Alex Store", "transferor_address": "HQ",
            "transferor_signature": _b64("ours"), "transferee_signature": _b64("theirs"),
            "hierarchy_declaration": True, "carrier_name": "Green Haulage Ltd", "carrier_registration": "CBDU123456",
            "recycler_permit": "EPR/AB1234CD", "hazardous_note_reference": "NORTHT/00001"}  # fmt: skip
    r = client.post(f"/api/custody/disposal-batches/{batch_id}/collect", json=note, headers=auth)
    assert r.status_code == 422 and "only for hazardous waste" in r.json()["detail"]
    assert r.headers["content-type"].startswith("application/problem+json")
    r = client.post(f"/api/custody/disposal-batches/{batch_id}/collect",
                    json={**note, "hazardous_note_reference": None}, headers=auth)  # fmt: skip
    assert r.status_code == 200 and r.json()["details"]["status"] == "collected"
