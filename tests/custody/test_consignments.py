"""Courier dispatch: manifest, hand-over scan, proof of delivery, failed delivery and return,
the per-wave courier cap with its numbers, and the exception report."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from harness.custody_data import allocated, entry_count, issue_first, last_evidence, ledger_ok, officer, signature
from harness.domain import state_of, verifier
from pypdf import PdfReader

from factory.custody.models import AllocationChannel
from factory.custody.service import (
    create_consignment,
    create_wave,
    deliver,
    hand_over,
    record_failed_delivery,
    return_to_factory,
)
from factory.custody.views import exception_report, get_consignment, get_document, sha256_hex
from factory.kernel.db.engine import session_scope
from factory.kernel.errors import GuardRefused

COURIER = AllocationChannel.COURIER


def _consign(ctx, allocation_ids: list[int]) -> str:
    with session_scope(ctx.engine) as s:
        return create_consignment(s, allocation_ids=allocation_ids, courier="SecureParcel Ltd",
                                  recipient_name="Front desk, Northtown station",
                                  recipient_address="1 High Street, Northtown", seal_numbers=["SEAL-77", "BAG-3"],
                                  actor="tech.one", site="test-site").record.reference  # fmt: skip


def test_consignment_lifecycle_with_manifest_and_proof_of_delivery(ctx) -> None:
    pc = officer(ctx)
    ids = [allocated(ctx, f"C-{n}", pc, channel=COURIER) for n in range(2)]
    ref = _consign(ctx, ids)
    with session_scope(ctx.engine) as s:
        manifest = get_document(s, get_consignment(s, ref).manifest_document_id or 0)
        text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(manifest.content)).pages)
        manifest_hash = manifest.sha256
        assert sha256_hex(manifest.content) == manifest_hash
    for needle in (ref, "SecureParcel Ltd", "SEAL-77", "C-0", "C-1", "PC1001", "1 High Street"):
        assert needle in text
    with session_scope(ctx.engine) as s:
        hand_over(s, reference=ref, scanned_serials=["C-0", "C-1"], actor="courier.one", verifier=verifier(ctx))
    assert state_of(ctx, "C-0") == "in_transit"
    dispatched = last_evidence(ctx, "C-0")
    assert dispatched["manifest"]["sha256"] == manifest_hash and dispatched["seals"] == ["SEAL-77", "BAG-3"]
    with session_scope(ctx.engine) as s:
        deliver(s, reference=ref, recipient_name="Sgt Brown", signature=signature("pod"), actor="courier.one")
    delivered = last_evidence(ctx, "C-1")
    assert delivered["recipient_name"] == "Sgt Brown" and delivered["consignment"] == ref
    assert delivered["proof_of_delivery"]["sha256"] == sha256_hex(signature("pod").content)
    assert state_of(ctx, "C-1") == "issued"
    assert ledger_ok(ctx)


def test_failed_delivery_and_return(ctx) -> None:
    pc = officer(ctx)
    ref = _consign(ctx, [allocated(ctx, "F-1", pc, channel=COURIER)])
    with session_scope(ctx.engine) as s:
        hand_over(s, reference=ref, scanned_serials=["F-1"], actor="courier.one", verifier=verifier(ctx))
        record_failed_delivery(s, reference=ref, reason="station closed", actor="courier.one")
    with session_scope(ctx.engine) as s:
        return_to_factory(s, reference=ref, actor="tech.one")
    assert state_of(ctx, "F-1") == "returned"
    assert "station closed" in last_evidence(ctx, "F-1")["failure"]


def test_courier_cap_refusal_states_the_numbers(ctx) -> None:
    with session_scope(ctx.engine) as s:
        create_wave(s, name="W1", cohort="Northtown station", target_devices=10)
    pc = officer(ctx)
    for n in range(3):
        issue_first(ctx, f"HAND-{n}", officer(ctx, f"PCH{n}"), wave="W1")
    first = allocated(ctx, "CAP-1", pc, channel=COURIER, wave="W1")
    _consign(ctx, [first])  # 1 of 4 = 25%: allowed
    second = allocated(ctx, "CAP-2", pc, channel=COURIER, wave="W1")
    before = entry_count(ctx)
    with pytest.raises(GuardRefused) as refused, session_scope(ctx.engine) as s:
        create_consignment(s, allocation_ids=[second], courier="X", recipient_name="Y", recipient_address="Z",
                           seal_numbers=[], actor="tech.one", site="test-site")  # fmt: skip
    assert "wave W1: 2 of 5 laptops would be issued by courier (40.0%), above the 25% cap" in refused.value.reason
    assert "3 in person, 1 already by courier, 1 in this consignment" in refused.value.reason
    assert entry_count(ctx) == before


def test_exception_report_overdue_and_missing_scans(ctx) -> None:
    pc = officer(ctx)
    ref = _consign(ctx, [allocated(ctx, f"E-{n}", pc, channel=COURIER) for n in range(3)])
    with session_scope(ctx.engine) as s:
        hand_over(s, reference=ref, scanned_serials=["E-0", "E-1"], actor="courier.one", verifier=verifier(ctx))
    with session_scope(ctx.engine) as s:
        deliver(s, reference=ref, recipient_name="Sgt Brown", signature=signature(), actor="courier.one",
                scanned_serials=["E-0"])  # fmt: skip
    with session_scope(ctx.engine) as s:
        now = [(e.problem, e.device_serial) for e in exception_report(s, overdue_days=3)]
        later = [e.problem for e in exception_report(s, overdue_days=3, now=datetime.now(UTC) + timedelta(days=4))]
    assert sorted(now) == [("missing_delivery_scan", "E-1"), ("missing_handover_scan", "E-2")]
    assert "overdue" in later
    assert state_of(ctx, "E-2") == "allocated"
