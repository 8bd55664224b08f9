"""The erase-round service on its own: one flow and one failure path, whatever erases the media."""

from __future__ import annotations

import json

import pytest
from harness.domain import move, ok_result, receive, state_of
from sqlmodel import select

from factory.kernel.db.engine import session_scope
from factory.kernel.errors import GuardRefused
from factory.kernel.lifecycle.states import Event
from factory.kernel.models.certificate import Certificate
from factory.kernel.models.custody_entry import CustodyEntry
from factory.sanitisation.errors import EraseFailed
from factory.sanitisation.service import EraseRound, RoundOrigin, Signatories, Staff, run_round

SIGNED = Signatories(Staff("tablet.bench"), Staff("tablet.bench", title="Automated validation"))


def origin(ctx) -> RoundOrigin:
    return RoundOrigin("tablet.bench", ctx.site_keys.verifier(), location="T1", evidence={"platform": "test"})


def entries(ctx, device_id: int) -> list[tuple[str, dict]]:
    with session_scope(ctx.engine) as s:
        rows = s.exec(select(CustodyEntry).where(CustodyEntry.device_id == device_id).order_by(CustodyEntry.seq))
        return [(row.event, json.loads(row.evidence)) for row in rows]


def certificates(ctx) -> list[Certificate]:
    with session_scope(ctx.engine) as s:
        return list(s.exec(select(Certificate)).all())


def test_a_round_opens_certifies_every_medium_and_closes_with_the_origin_in_each_entry(ctx) -> None:
    d = receive(ctx, "TAB-1", ["A", "B"])
    seen: list[EraseRound] = []

    def erase(round_: EraseRound):
        seen.append(round_)
        return [(serial, ok_result(serial)) for serial in round_.serials]

    outcome = run_round(ctx, "TAB-1", origin(ctx), SIGNED, erase)

    assert outcome.ok and outcome.state == "sanitised"
    assert seen[0].serials == ["A", "B"]
    assert sorted(outcome.certificates) == ["A", "B"]
    assert {c.id: c.erase_round_seq for c in certificates(ctx)} == {
        cid: seen[0].seq for cid in outcome.certificates.values()
    }
    events = entries(ctx, d)
    assert [e for e, _ in events] == ["receive", "start_sanitise", "sanitised"]
    assert events[1][1] == {"media": ["A", "B"], "platform": "test"}
    digests = {c.id: c.digest_sha256 for c in certificates(ctx)}  # the ledger binds each certificate row
    assert events[2][1] == {
        "certificates": list(outcome.certificates.values()),
        "certificate_digests": digests,
        "platform": "test",
    }


def test_a_failed_erase_fails_the_round_with_its_reason_and_no_certificate(ctx) -> None:
    d = receive(ctx, "TAB-2", ["A"])

    def erase(round_: EraseRound):
        raise EraseFailed("medium A: verification mismatch at offset 4096")

    outcome = run_round(ctx, "TAB-2", origin(ctx), SIGNED, erase)

    assert not outcome.ok and outcome.state == "sanitise_failed"
    assert entries(ctx, d)[-1] == (
        "fail",
        {"reason": "medium A: verification mismatch at offset 4096", "platform": "test"},
    )
    assert certificates(ctx) == []


def test_a_refused_certification_stores_no_certificate_of_the_round(ctx) -> None:
    receive(ctx, "TAB-3", ["A", "B"])

    def erase(round_: EraseRound):  # B's result names another disk: the whole round is refused
        return [("A", ok_result("A")), ("B", ok_result("NOT-B"))]

    outcome = run_round(ctx, "TAB-3", origin(ctx), SIGNED, erase)

    assert outcome.state == "sanitise_failed"
    assert (outcome.failure_reason or "").startswith("certification refused: erase result is for medium NOT-B")
    assert certificates(ctx) == []


def test_a_round_replaced_meanwhile_is_neither_certified_nor_failed(ctx) -> None:
    d = receive(ctx, "TAB-4", ["A"])

    def erase(round_: EraseRound):  # someone else failed this round and opened another
        move(ctx, d, Event.FAIL, evidence={"reason": "pulled"})
        move(ctx, d, Event.START_SANITISE)
        return [("A", ok_result("A"))]

    outcome = run_round(ctx, "TAB-4", origin(ctx), SIGNED, erase)

    assert outcome.state == "sanitising" and "left erase round" in (outcome.failure_reason or "")
    assert [e for e, _ in entries(ctx, d)] == ["receive", "start_sanitise", "fail", "start_sanitise"]
    assert certificates(ctx) == []


def test_a_device_without_recorded_media_is_refused_before_a_round_opens(ctx) -> None:
    receive(ctx, "TAB-5", [])

    with pytest.raises(GuardRefused, match="no recorded storage media"):
        run_round(ctx, "TAB-5", origin(ctx), SIGNED, lambda round_: [])
    assert state_of(ctx, "TAB-5") == "received"
