"""In-vehicle tablets, redistribution to schools (external-reuse certificates only, transfer note
PDF) and witnessed destruction with hashed evidence."""

from __future__ import annotations

import io
from datetime import date

import pytest
from harness.custody_data import JPEG, entry_count, last_evidence, ledger_ok, ready
from harness.domain import move, receive, sanitise, state_of, verifier
from pypdf import PdfReader

from factory.custody.service import (
    Upload,
    allocate,
    decommission_vehicle,
    install_tablet,
    redistribute,
    register_party,
    register_vehicle,
    request_destruction,
    witness_destruction,
)
from factory.custody.views import get_document, sha256_hex
from factory.kernel.db.engine import session_scope
from factory.kernel.errors import GuardRefused
from factory.kernel.lifecycle.states import Event
from factory.kernel.models.parties import CustodianKind
from imaging.certificate import Destination


def test_vehicle_install_and_removal_on_decommissioning(ctx) -> None:
    ready(ctx, "VT-1", kind="vehicle-tablet")
    with session_scope(ctx.engine) as s:
        register_vehicle(s, fleet_number="FL-204", registration="AB12 CDE")
        allocation = allocate(s, serial="VT-1", actor="tech.one", fleet_number="FL-204").record
        install_tablet(
            s,
            allocation_id=allocation.id or 0,
            installer_name="Sam Fitter",
            installer_company="AutoFit Ltd",
            installed_on=date(2026, 1, 5),
            actor="tech.one",
            verifier=verifier(ctx),
        )
    assert state_of(ctx, "VT-1") == "installed"
    assert last_evidence(ctx, "VT-1") == {"allocation_id": 1, "vehicle": "FL-204", "installer": "Sam Fitter",
                                          "contractor": "AutoFit Ltd", "installed_on": "2026-01-05"}  # fmt: skip
    with session_scope(ctx.engine) as s:
        decommission_vehicle(s, fleet_number="FL-204", removed_by="Sam Fitter", actor="tech.one")
    assert state_of(ctx, "VT-1") == "returned"
    assert last_evidence(ctx, "VT-1")["reason"] == "vehicle decommissioned"
    assert ledger_ok(ctx)


def test_redistribution_needs_external_reuse_certificates_and_writes_a_transfer_note(ctx) -> None:
    good, internal = receive(ctx, "SCH-1", media=("M1", "M2")), receive(ctx, "SCH-2")
    sanitise(ctx, good, destination=Destination.EXTERNAL_REUSE)
    sanitise(ctx, internal, destination=Destination.INTERNAL_REUSE)
    with session_scope(ctx.engine) as s:
        register_party(s, kind=CustodianKind.SCHOOL, reference="URN-100234", name="Northtown Academy",
                       address="School Lane, Northtown")  # fmt: skip
    before = entry_count(ctx)
    with (
        pytest.raises(GuardRefused, match=r"SCH-2: certificate .* was made for 'internal_reuse'"),
        session_scope(ctx.engine) as s,
    ):
        redistribute(s, organisation_reference="URN-100234", serials=["SCH-1", "SCH-2"], actor="tech.one",
                     site="test-site", verifier=verifier(ctx))  # fmt: skip
    assert entry_count(ctx) == before and state_of(ctx, "SCH-1") == "sanitised"
    with session_scope(ctx.engine) as s:
        result = redistribute(s, organisation_reference="URN-100234", serials=["SCH-1"], actor="tech.one",
                              site="test-site", verifier=verifier(ctx))  # fmt: skip
        pdf = result.document.content if result.document else b""
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    assert "Northtown Academy" in text and "SCH-1" in text and "external reuse" in text
    evidence = last_evidence(ctx, "SCH-1")
    assert evidence["transfer_note"]["sha256"] == sha256_hex(pdf) and len(evidence["certificates"]) == 2
    assert state_of(ctx, "SCH-1") == "redistributed"
    assert ledger_ok(ctx)


def test_destruction_is_witnessed_and_its_evidence_hashed(ctx) -> None:
    device_id = receive(ctx, "DESTROY-1")
    move(ctx, device_id, Event.START_SANITISE)
    move(ctx, device_id, Event.FAIL)
    photo = Upload(JPEG, "image/jpeg", "shredded.jpg")
    with session_scope(ctx.engine) as s:
        record_id = request_destruction(s, serial="DESTROY-1", method="shred", reason="erase failed: I/O errors",
                                        evidence=photo, actor="tech.one").record.id  # fmt: skip
    with pytest.raises(GuardRefused, match="needs a second person"), session_scope(ctx.engine) as s:
        witness_destruction(s, record_id=record_id or 0, witness="tech.one")
    assert state_of(ctx, "DESTROY-1") == "sanitise_failed"
    with session_scope(ctx.engine) as s:
        entry = witness_destruction(s, record_id=record_id or 0, witness="tech.two").entries[0]
        assert (entry.actor, entry.to_state) == ("tech.one", "destroyed")
        stored = get_document(s, 1).content
    evidence = last_evidence(ctx, "DESTROY-1")
    assert evidence["witness"] == "tech.two" and evidence["evidence"]["sha256"] == sha256_hex(JPEG) == sha256_hex(
        stored
    )
    assert ledger_ok(ctx)
