"""A packed consignment on its way: hand-over with every device and seal scanned, delivery with
the seals checked and the officers' old devices collected one for one, failed delivery and the
return to the factory, and the exception report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from harness.courier_data import COURIER_NAME, courier_allocations, packed, shielded_officer, wave_with_room
from harness.custody_data import entries, entry_count, last_evidence, ledger_ok, signature
from harness.domain import state_of, verifier

from factory.custody.issue import usable_exceptions
from factory.custody.lookups import get_approval
from factory.custody.service import (
    approve_exception,
    deliver,
    hand_over,
    record_failed_delivery,
    request_exception,
    return_to_factory,
)
from factory.custody.views import exception_report, get_consignment
from factory.kernel.db.engine import session_scope
from factory.kernel.errors import GuardRefused, InvalidInput


def _setup(ctx, serials: list[str], staff: str = "PC2001", old: str | None = "OLD-1") -> str:
    wave_with_room(ctx, "WT", in_person=0)
    pc = shielded_officer(ctx, staff, old_serial=old)
    return packed(ctx, courier_allocations(ctx, serials, pc, "WT"), seals=["SEAL-1", "SEAL-2"])


def _hand_over(ctx, ref: str, serials: list[str], seals: list[str]) -> None:
    keys = verifier(ctx)  # outside the unit of work: it may read the key registry
    with session_scope(ctx.engine) as s:
        hand_over(s, reference=ref, scanned_serials=serials, scanned_seals=seals, actor="courier.one",
                  verifier=keys)  # fmt: skip


def _deliver(ctx, ref: str, old: list[str], seals=("SEAL-1", "SEAL-2"), serials=None, at=None) -> None:
    with session_scope(ctx.engine) as s:
        deliver(s, reference=ref, recipient_name="Jane Smith", signature=signature("pod"), scanned_seals=list(seals),
                old_serials=old, actor="courier.one", scanned_serials=serials, delivered_at=at)  # fmt: skip


def test_hand_over_names_every_device_not_scanned_and_moves_nothing(ctx) -> None:
    ref = _setup(ctx, ["H-0", "H-1", "H-2"])
    before = entry_count(ctx)
    with pytest.raises(GuardRefused) as refused:
        _hand_over(ctx, ref, ["H-1"], ["SEAL-1", "SEAL-2"])
    assert "2 of 3 devices not scanned: H-0, H-2" in refused.value.reason
    assert entry_count(ctx) == before and state_of(ctx, "H-1") == "allocated"
    with pytest.raises(GuardRefused, match=r"seal SEAL-2 of consignment .* not scanned at hand-over"):
        _hand_over(ctx, ref, ["H-0", "H-1", "H-2"], ["SEAL-1"])
    with pytest.raises(GuardRefused, match="seal SEAL-9 is not a seal of consignment"):
        _hand_over(ctx, ref, ["H-0", "H-1", "H-2"], ["SEAL-1", "SEAL-2", "SEAL-9"])
    with pytest.raises(GuardRefused, match="does not contain NOPE"):
        _hand_over(ctx, ref, ["H-0", "H-1", "H-2", "NOPE"], ["SEAL-1", "SEAL-2"])
    assert entry_count(ctx) == before
    _hand_over(ctx, ref, ["H-2", "H-0", "H-1", "H-0"], ["SEAL-2", "SEAL-1"])  # a repeated scan counts once
    dispatched = entries(ctx, "H-0")[-1]
    assert (dispatched.to_state, dispatched.to_custodian) == ("in_transit", f"courier:{COURIER_NAME}")
    assert last_evidence(ctx, "H-0")["seals_checked"] == ["SEAL-2", "SEAL-1"]


def test_delivery_takes_the_officers_old_device_back_one_for_one(ctx) -> None:
    ref = _setup(ctx, ["D-0"])
    _hand_over(ctx, ref, ["D-0"], ["SEAL-1", "SEAL-2"])
    shielded_officer(ctx, "PC2999", old_serial="OTHERS-OLD")
    before = entry_count(ctx)
    with pytest.raises(GuardRefused, match="PC2001 receives 1 and hands back 0"):
        _deliver(ctx, ref, old=[])
    with pytest.raises(GuardRefused, match="OTHERS-OLD is held by 'officer:PC2999', not by an officer receiving"):
        _deliver(ctx, ref, old=["OTHERS-OLD"])
    with pytest.raises(GuardRefused, match=r"seal SEAL-2 of consignment .* not scanned at delivery"):
        _deliver(ctx, ref, old=["OLD-1"], seals=["SEAL-1"])
    with pytest.raises(InvalidInput, match="before the courier collected the consignment"):
        _deliver(ctx, ref, old=["OLD-1"], at=datetime.now(UTC) - timedelta(hours=1))  # typed after the visit, wrong
    with pytest.raises(InvalidInput, match="in the future"):
        _deliver(ctx, ref, old=["OLD-1"], at=datetime.now(UTC) + timedelta(hours=1))
    assert entry_count(ctx) == before and state_of(ctx, "D-0") == "in_transit"
    _deliver(ctx, ref, old=["OLD-1"])
    new, old = entries(ctx, "D-0")[-1], entries(ctx, "OLD-1")[-1]
    assert (new.event, new.to_custodian, new.location) == ("deliver", "officer:PC2001", "1 High Street, Northtown")
    assert (old.event, old.to_state, old.to_custodian) == ("return", "returned", f"courier:{COURIER_NAME}")
    assert last_evidence(ctx, "D-0")["exchange_for"] == "OLD-1"
    assert last_evidence(ctx, "OLD-1")["exchanged_for"] == "D-0"
    assert new.seq == old.seq - 1 or old.seq == new.seq - 1  # one change: both entries or neither
    with session_scope(ctx.engine) as s:
        assert get_consignment(s, ref).status == "delivered"
    assert ledger_ok(ctx)


def _exception(ctx, allocation_id: int, approver: str = "admin.one") -> int:
    """An exception to the exchange rule for the allocation, asked for by tech.one and approved by ``approver``."""
    with session_scope(ctx.engine) as s:
        approval = request_exception(s, allocation_id=allocation_id, reason="new starter", requested_by="tech.one")
        approve_exception(s, approval_id=approval.record.id or 0, approver=approver)
        return approval.record.id or 0


def test_a_new_starter_gets_a_delivery_only_under_an_approved_exception_used_once(ctx) -> None:
    wave_with_room(ctx, "WX", in_person=0)
    staff = shielded_officer(ctx, "PC2100")  # a new starter: no old device to collect
    first, second = courier_allocations(ctx, ["NS-0", "NS-1"], staff, "WX")
    ref = packed(ctx, [first, second], seals=["SEAL-1", "SEAL-2"])
    _hand_over(ctx, ref, ["NS-0", "NS-1"], ["SEAL-1", "SEAL-2"])
    with pytest.raises(GuardRefused, match="PC2100 receives 1 and hands back 0"):
        _deliver(ctx, ref, old=[], serials=["NS-0"])  # refused without an exception
    with session_scope(ctx.engine) as s:
        asked = request_exception(s, allocation_id=first, reason="new starter", requested_by="tech.one").record.id
    with pytest.raises(GuardRefused, match="needs a second user"), session_scope(ctx.engine) as s:
        approve_exception(s, approval_id=asked or 0, approver="tech.one")  # not the user who asked
    with session_scope(ctx.engine) as s:
        approve_exception(s, approval_id=asked or 0, approver="admin.one")
    with pytest.raises(GuardRefused, match=r"PC2100 receives 2 and hands back 0 \(1 with an approved exception\)"):
        _deliver(ctx, ref, old=[])  # one exception, one device
    _deliver(ctx, ref, old=[], serials=["NS-0"])
    delivered = entries(ctx, "NS-0")[-1]
    evidence = last_evidence(ctx, "NS-0")
    assert (delivered.event, delivered.to_custodian) == ("deliver", "officer:PC2100")
    assert "exchange_for" not in evidence
    assert evidence["exception"] == {"approval_id": asked, "reason": "new starter", "requested_by": "tech.one",
                                     "approved_by": "admin.one"}  # fmt: skip
    with session_scope(ctx.engine) as s:
        assert get_approval(s, asked or 0).used_seq == delivered.seq  # used, once
        assert usable_exceptions(s, [first, second]) == {}
    _exception(ctx, second, approver="courier.one")  # four eyes: the courier approved it, so cannot use it
    with pytest.raises(GuardRefused, match="PC2100 receives 1 and hands back 0"):
        _deliver(ctx, ref, old=[], serials=["NS-1"])
    assert state_of(ctx, "NS-1") == "in_transit" and ledger_ok(ctx)


def test_an_exception_stays_unused_when_the_old_device_is_collected(ctx) -> None:
    wave_with_room(ctx, "WY", in_person=0)
    staff = shielded_officer(ctx, "PC2200", old_serial="OLD-Y")
    [allocation_id] = courier_allocations(ctx, ["Y-0"], staff, "WY")
    approval_id = _exception(ctx, allocation_id)
    ref = packed(ctx, [allocation_id], seals=["SEAL-1", "SEAL-2"])
    _hand_over(ctx, ref, ["Y-0"], ["SEAL-1", "SEAL-2"])
    _deliver(ctx, ref, old=["OLD-Y"])
    assert last_evidence(ctx, "Y-0")["exchange_for"] == "OLD-Y" and "exception" not in last_evidence(ctx, "Y-0")
    with session_scope(ctx.engine) as s:
        assert get_approval(s, approval_id).used_seq is None  # nothing went under it


def test_failed_delivery_and_return_to_the_factory(ctx) -> None:
    ref = _setup(ctx, ["F-1"])
    _hand_over(ctx, ref, ["F-1"], ["SEAL-1", "SEAL-2"])
    with session_scope(ctx.engine) as s:
        record_failed_delivery(s, reference=ref, reason="nobody at home", actor="courier.one")
    with session_scope(ctx.engine) as s:
        return_to_factory(s, reference=ref, actor="dispatch.one")
    back = entries(ctx, "F-1")[-1]
    assert (back.event, back.to_state, back.to_custodian, back.location) == (
        "undeliverable", "returned", "factory", "factory")  # fmt: skip
    assert "nobody at home" in last_evidence(ctx, "F-1")["failure"]


def test_exception_report_overdue_and_missing_delivery_scans(ctx) -> None:
    ref = _setup(ctx, ["E-0", "E-1"])
    _hand_over(ctx, ref, ["E-0", "E-1"], ["SEAL-1", "SEAL-2"])
    _deliver(ctx, ref, old=["OLD-1"], serials=["E-0"])  # one of the two handed to the officer
    with session_scope(ctx.engine) as s:
        now = [(e.problem, e.device_serial) for e in exception_report(s, overdue_days=3)]
        later = [e.problem for e in exception_report(s, overdue_days=3, now=datetime.now(UTC) + timedelta(days=4))]
    assert now == [("missing_delivery_scan", "E-1")]
    assert "overdue" in later and state_of(ctx, "E-1") == "in_transit"
