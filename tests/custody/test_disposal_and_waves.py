"""WEEE disposal batches (waste transfer note, batteries, recycler certificate, close only when
every device is accounted for) and refresh-wave KPIs from the ledger."""

from __future__ import annotations

import io

import pytest
from harness.custody_data import allocated, entry_count, issue_first, last_evidence, ledger_ok, officer, signature
from harness.domain import force_state, move, receive, sanitise, state_of, verifier
from pypdf import PdfReader

from factory.custody.service import (
    WasteTransfer,
    add_device,
    close_batch,
    collect,
    create_wave,
    issue_device,
    open_batch,
    record_recycler_certificate,
    register_party,
    remove_device,
)
from factory.custody.views import bench_kpis, get_document, sha256_hex, wave_kpis
from factory.intake.views import device_view, get_device
from factory.kernel.db.engine import session_scope
from factory.kernel.errors import GuardRefused
from factory.kernel.lifecycle.states import Event
from factory.kernel.models.parties import CustodianKind
from imaging.certificate import Destination


def _transfer(hazardous: str | None = "NORTHT/00001") -> WasteTransfer:
    return WasteTransfer(containment="1 caged pallet", place="Loading bay, HQ", transferor_name="Alex Store",
                         transferor_address="Police HQ, Northtown", transferor_signature=signature("ours"),
                         transferee_signature=signature("theirs"), hierarchy_declaration=True,
                         hazardous_note_reference=hazardous, carrier_name="Green Recycling Ltd",
                         carrier_registration="CBDU123456", recycler_permit="EPR/AB1234CD")  # fmt: skip


def _batch(ctx, serials: list[str]) -> int:
    for serial in serials:
        sanitise(ctx, receive(ctx, serial), destination=Destination.RECYCLING)
    with session_scope(ctx.engine) as s:
        register_party(s, kind=CustodianKind.RECYCLER, reference="WEEE-CO", name="Green Recycling Ltd",
                       address="Unit 4, Industrial Estate")  # fmt: skip
        batch_id = open_batch(s, recycler_reference="WEEE-CO", description="Waste laptops", ewc_code="16 02 13*",
                              sic_code="84240", actor="admin.one").record.id or 0  # fmt: skip
        for serial in serials:
            add_device(s, batch_id=batch_id, serial=serial, actor="admin.one", verifier=verifier(ctx))
    return batch_id


def test_disposal_batch_end_to_end(ctx) -> None:
    batch_id = _batch(ctx, ["WEEE-1", "WEEE-2", "WEEE-3"])
    with session_scope(ctx.engine) as s:
        remove_device(s, batch_id=batch_id, serial="WEEE-3", reason="kept as spare parts", actor="admin.one")
    assert state_of(ctx, "WEEE-3") == "sanitised"
    with (
        pytest.raises(GuardRefused, match="is hazardous waste: a hazardous waste consignment note code is required"),
        session_scope(ctx.engine) as s,
    ):
        collect(
            s,
            batch_id=batch_id,
            transfer=_transfer(hazardous=None),
            actor="admin.one",
            site="test-site",
            verifier=verifier(ctx),
        )
    with session_scope(ctx.engine) as s:
        batch = collect(
            s, batch_id=batch_id, transfer=_transfer(), actor="admin.one", site="test-site", verifier=verifier(ctx)
        ).record
        wtn = get_document(s, batch.wtn_document_id or 0).content
        wtn_sha = get_document(s, batch.wtn_document_id or 0).sha256
    # the hand-off to the recycler is a custody entry per device, naming the waste transfer note
    assert state_of(ctx, "WEEE-1") == "with_recycler"
    with session_scope(ctx.engine) as s:
        collected = [e for e in device_view(s, get_device(s, "WEEE-1"))["history"] if e["event"] == "collect"]
    assert len(collected) == 1 and wtn_sha in str(collected[0]["evidence"])
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(wtn)).pages)
    for needle in ("Waste laptops", "16 02 13*", "2 devices", "1 caged pallet", "Green Recycling Ltd",
                   "Unit 4, Industrial Estate", "Police HQ, Northtown", "84240", "waste management hierarchy",
                   "Loading bay, HQ", "NORTHT/00001", sha256_hex(signature("theirs").content), "WEEE-1"):  # fmt: skip
        assert needle in text.replace("\n", ""), needle  # long hashes wrap across lines
    # disposal without the recycler's certificate is refused
    with (
        pytest.raises(GuardRefused, match="no recycler's recycling/destruction certificate"),
        session_scope(ctx.engine) as s,
    ):
        record_recycler_certificate(s, batch_id=batch_id, serials=["WEEE-1"], actor="admin.one", verifier=verifier(ctx))
    with session_scope(ctx.engine) as s:
        record_recycler_certificate(s, batch_id=batch_id, serials=["WEEE-1"], reference="RC-2026-0042",
                                    actor="admin.one", verifier=verifier(ctx))  # fmt: skip
    # a batch with a device not accounted for does not close
    with pytest.raises(GuardRefused, match="cannot close: 1 device\\(s\\) not accounted for by the recycler: WEEE-2"):
        with session_scope(ctx.engine) as s:
            close_batch(s, batch_id=batch_id, actor="admin.one")
    with session_scope(ctx.engine) as s:
        record_recycler_certificate(s, batch_id=batch_id, serials=["WEEE-2"], actor="admin.one", verifier=verifier(ctx))
        assert close_batch(s, batch_id=batch_id, actor="admin.one").record.status == "closed"
    evidence = last_evidence(ctx, "WEEE-2")
    assert evidence["recycler_certificate"] == "RC-2026-0042" and evidence["waste_transfer_note"][
        "sha256"
    ] == sha256_hex(wtn)
    assert evidence["hazardous_consignment_note"] == "NORTHT/00001"
    assert state_of(ctx, "WEEE-1") == state_of(ctx, "WEEE-2") == "disposed"
    assert ledger_ok(ctx)


def test_disposal_refuses_a_device_without_a_valid_certificate(ctx) -> None:
    _batch(ctx, ["WEEE-OK"])
    uncertified = receive(ctx, "NO-CERT")
    move(ctx, uncertified, Event.START_SANITISE)
    with session_scope(ctx.engine) as s:
        force_state(s, uncertified, "sanitised")  # as if someone flipped the state without certificates
    before = entry_count(ctx)
    with (
        pytest.raises(GuardRefused, match="NO-CERT: storage medium M1 has no certificate"),
        session_scope(ctx.engine) as s,
    ):
        add_device(s, batch_id=1, serial="NO-CERT", actor="admin.one", verifier=verifier(ctx))
    assert entry_count(ctx) == before


def test_wave_kpis_from_the_ledger(ctx) -> None:
    with session_scope(ctx.engine) as s:
        create_wave(s, name="W-KPI", cohort="Eastfield unit", target_devices=4)
    pc = officer(ctx)
    issue_first(ctx, "K-1", pc, wave="W-KPI")
    allocation_id = allocated(ctx, "K-2", pc, wave="W-KPI")
    from harness.custody_data import accept

    with session_scope(ctx.engine) as s:
        issue_device(s, allocation_id=allocation_id, acceptance=accept(), actor="tech.one", verifier=verifier(ctx),
                     old_serial="K-1")  # fmt: skip
    allocated(ctx, "K-3", pc, wave="W-KPI")
    with session_scope(ctx.engine) as s:
        k = wave_kpis(s, "W-KPI")
    assert (k.allocated, k.handed_over, k.target_devices, k.progress_percent) == (3, 1, 4, 25.0)
    assert k.queue_lengths == {"allocated": 1, "issued": 1, "returned": 1}
    assert k.first_time_pass_rate == 1.0
    assert {"provisioning", "ready", "allocated", "issued"} <= set(k.mean_seconds_in_state)
    assert all(v >= 0 for v in k.mean_seconds_in_state.values())
    assert k.devices_per_hour is not None and k.devices_per_hour > 0


def test_bench_kpis_without_benches_are_empty(ctx) -> None:
    with session_scope(ctx.engine) as s:
        assert bench_kpis(s) == []
