"""The rule that must never break: nothing leaves for reuse, redistribution or recycling without a
verified certificate for every storage medium, from an erase after the device last held data."""

from __future__ import annotations

import json

import pytest
from harness.domain import certify_all, force_state, move, receive, sanitise, state_of
from sqlalchemy import text
from sqlmodel import select

from factory.kernel.db.append_only import drop_statements
from factory.kernel.db.engine import session_scope
from factory.kernel.errors import GuardRefused
from factory.kernel.lifecycle.states import Event, State
from factory.kernel.models.certificate import Certificate
from factory.kernel.models.device import StorageMedium
from factory.sanitisation.service import Staff, certify_medium
from imaging.certificate import Destination


def test_sanitised_needs_a_certificate_for_every_medium(ctx) -> None:
    d = receive(ctx, "G-1", media=("A", "B"))
    move(ctx, d, Event.START_SANITISE)
    with pytest.raises(GuardRefused, match="has no certificate"):
        move(ctx, d, Event.SANITISED)
    with session_scope(ctx.engine) as s:  # certify only medium A
        from harness.domain import ok_result

        from factory.kernel.models.device import Device

        device = s.get(Device, d)
        medium = s.exec(select(StorageMedium).where(StorageMedium.serial == "A")).one()
        certify_medium(s, ctx.settings, device=device, medium=medium, result=ok_result("A"),
                       operator=Staff("a"), validator=Staff("b"))  # fmt: skip
    with pytest.raises(GuardRefused, match="medium B has no certificate"):
        move(ctx, d, Event.SANITISED)
    assert state_of(ctx, "G-1") == State.SANITISING
    move(ctx, d, Event.FAIL)
    assert state_of(ctx, "G-1") == State.SANITISE_FAILED


def test_device_without_media_can_never_be_certified(ctx) -> None:
    d = receive(ctx, "G-2", media=())
    move(ctx, d, Event.START_SANITISE)
    with pytest.raises(GuardRefused, match="no storage media recorded"):
        move(ctx, d, Event.SANITISED)


def test_certificates_from_an_earlier_round_do_not_count(ctx) -> None:
    d = receive(ctx, "G-3")
    sanitise(ctx, d)
    move(ctx, d, Event.START_PROVISION)
    move(ctx, d, Event.PROVISIONED)
    move(ctx, d, Event.START_SANITISE)  # a new round: old certificates no longer speak for it
    with pytest.raises(GuardRefused, match="no certificate from the latest erase"):
        move(ctx, d, Event.SANITISED)


def test_returned_device_needs_a_fresh_erase_before_reuse(ctx) -> None:
    d = receive(ctx, "G-4")
    sanitise(ctx, d)
    for event in (Event.START_PROVISION, Event.PROVISIONED, Event.ALLOCATE, Event.ISSUE, Event.RETURN):
        move(ctx, d, event)
    # Back from an officer with their data: force it to 'allocated' as if someone skipped the erase.
    with session_scope(ctx.engine) as s:
        force_state(s, d, State.ALLOCATED)
    with pytest.raises(GuardRefused, match="held user data since its last erase"):
        move(ctx, d, Event.ISSUE)


def test_new_stock_is_issued_without_an_erase_but_used_stock_is_not_provisioned(ctx) -> None:
    new = receive(ctx, "G-5", new_stock=True)
    for event in (Event.START_PROVISION, Event.PROVISIONED, Event.ALLOCATE, Event.ISSUE):
        move(ctx, new, event)
    assert state_of(ctx, "G-5") == State.ISSUED
    used = receive(ctx, "G-6")
    with pytest.raises(GuardRefused, match="must be sanitised before provisioning"):
        move(ctx, used, Event.START_PROVISION)


def test_redistribution_requires_external_reuse_destination_when_asked(ctx) -> None:
    d = receive(ctx, "G-7")
    sanitise(ctx, d, destination=Destination.INTERNAL_REUSE)
    with pytest.raises(GuardRefused, match="not 'external_reuse'"):
        move(ctx, d, Event.REDISTRIBUTE, required_destination="external_reuse")
    e = receive(ctx, "G-8")
    sanitise(ctx, e, destination=Destination.EXTERNAL_REUSE)
    move(ctx, e, Event.REDISTRIBUTE, required_destination="external_reuse")
    assert state_of(ctx, "G-8") == State.REDISTRIBUTED


def test_tampered_certificate_closes_the_gate(ctx) -> None:
    d = receive(ctx, "G-9")
    sanitise(ctx, d)
    dialect = ctx.engine.dialect.name
    with session_scope(ctx.engine) as s:
        for stmt in drop_statements(dialect, "certificate"):
            s.execute(text(stmt))
        cert = s.exec(select(Certificate)).one()
        envelope = json.loads(cert.envelope)
        envelope["certificate"]["verification"]["mismatches"] = 0
        envelope["certificate"]["sanitisation"]["passes"] = 3  # any change breaks the digest
        s.execute(text("UPDATE certificate SET envelope = :e"), {"e": json.dumps(envelope)})
    with pytest.raises(GuardRefused, match="does not verify"):
        move(ctx, d, Event.ADD_TO_DISPOSAL)
    assert state_of(ctx, "G-9") == State.SANITISED


def test_certificate_for_another_medium_is_rejected(ctx) -> None:
    d = receive(ctx, "G-10", media=("X1",))
    move(ctx, d, Event.START_SANITISE)
    certify_all(ctx, d)
    with session_scope(ctx.engine) as s:
        s.execute(text("UPDATE storage_medium SET serial = 'OTHER' WHERE serial = 'X1'"))
    with pytest.raises(GuardRefused, match="speaks for"):
        move(ctx, d, Event.SANITISED)


def test_destroy_needs_a_second_person(ctx) -> None:
    d = receive(ctx, "G-11")
    move(ctx, d, Event.START_SANITISE)
    move(ctx, d, Event.FAIL)
    with pytest.raises(GuardRefused, match="second person"):
        move(ctx, d, Event.DESTROY)
    with pytest.raises(GuardRefused, match="second person"):
        move(ctx, d, Event.DESTROY, witness="tech.one")  # the actor cannot witness themselves
    move(ctx, d, Event.DESTROY, witness="tech.two")
    assert state_of(ctx, "G-11") == State.DESTROYED


def test_failed_erase_cannot_yield_a_certificate(ctx) -> None:
    from dataclasses import replace

    from harness.domain import ok_result

    from factory.kernel.models.device import Device

    d = receive(ctx, "G-12")
    move(ctx, d, Event.START_SANITISE)
    failed = replace(ok_result("M1"), ok=False, failure_reason="EIO at offset 4096", failure_offset=4096)
    with session_scope(ctx.engine) as s, pytest.raises(GuardRefused, match="no certificate"):
        certify_medium(
            s, ctx.settings, device=s.get(Device, d),
            medium=s.exec(select(StorageMedium)).one(), result=failed,
            operator=Staff("a"), validator=Staff("b"),
        )  # fmt: skip
    with session_scope(ctx.engine) as s:
        assert s.exec(select(Certificate)).all() == []


def test_swap_half_alone_is_refused(ctx) -> None:
    d = receive(ctx, "G-13", new_stock=True)
    with session_scope(ctx.engine) as s:
        force_state(s, d, State.ISSUED)
    with pytest.raises(GuardRefused, match="part of an exchange"):
        move(ctx, d, Event.SWAP)
