"""Every edge of the transition table is allowed; every other (event, state) pair is refused."""

from __future__ import annotations

import pytest
from harness.domain import certify_all, force_state, move, receive, verifier
from sqlmodel import func, select

from factory.kernel.clock import utc_now
from factory.kernel.db.engine import session_scope
from factory.kernel.errors import InvalidTransition
from factory.kernel.lifecycle.states import FAILURE, GROUPS, IN_PROGRESS, STABLE, TERMINAL, Event, State
from factory.kernel.lifecycle.table import TRANSITIONS, Edge, Guard, find_edge
from factory.kernel.lifecycle.transition import TransitionRequest, change_state
from factory.kernel.models.custody_entry import CustodyEntry
from factory.kernel.models.device import Device


def _entries(ctx) -> int:
    with session_scope(ctx.engine) as s:
        return s.exec(select(func.count()).select_from(CustodyEntry)).one()


def _prepare(ctx, n: int, edge: Edge) -> int:
    """A device in edge.source with everything the edge's guard could ask for."""
    new_stock = edge.guard is Guard.NEW_STOCK
    device_id = receive(ctx, f"EDGE-{n}", new_stock=new_stock)
    if edge.guard in (Guard.CERTIFIED, Guard.CERTS_IF_USED):
        move(ctx, device_id, Event.START_SANITISE)
        certify_all(ctx, device_id)
    with session_scope(ctx.engine) as s:
        force_state(s, device_id, str(edge.source))
    return device_id


def _unrecorded_device(ctx, serial: str) -> int:
    """Test seeding only: a device row before its first custody entry (product code writes both at once)."""
    with session_scope(ctx.engine) as s:
        device = Device(serial=serial, kind="laptop", created_at=utc_now(), updated_at=utc_now())
        s.add(device)
        s.flush()
        return device.id or 0


def test_groups_partition_every_state() -> None:
    grouped = [s for group in GROUPS.values() for s in group]
    assert sorted(grouped) == sorted(State)
    assert not (STABLE & IN_PROGRESS) and not (FAILURE & TERMINAL)


def test_sanitise_failed_has_exactly_two_exits() -> None:
    exits = {(e.event, e.target) for e in TRANSITIONS if e.source is State.SANITISE_FAILED}
    assert exits == {(Event.START_SANITISE, State.SANITISING), (Event.DESTROY, State.DESTROYED)}


def test_terminal_states_have_no_exits() -> None:
    assert not [e for e in TRANSITIONS if e.source in TERMINAL]


def test_every_edge_is_allowed(ctx) -> None:
    for n, edge in enumerate(TRANSITIONS):
        if edge.event is Event.RECEIVE:
            before = _entries(ctx)
            receive(ctx, f"EDGE-{n}")
            assert _entries(ctx) == before + 1
            continue
        if edge.source is None:  # another first entry (enrol_in_field): a device row with no history yet
            device_id = _unrecorded_device(ctx, f"EDGE-{n}")
            before = _entries(ctx)
            with session_scope(ctx.engine) as s:
                [entry] = change_state(s, [TransitionRequest(device_id, edge.event)], actor="tech.one")
            assert _entries(ctx) == before + 1 and (entry.from_state, entry.to_state) == (None, edge.target), edge
            continue
        device_id = _prepare(ctx, n, edge)
        requests = [TransitionRequest(device_id=device_id, event=edge.event)]
        if edge.guard is Guard.PAIRED:  # the other half of a swap: a ready spare goes out
            spare = receive(ctx, f"SPARE-{n}", new_stock=True)
            with session_scope(ctx.engine) as s:
                force_state(s, spare, State.READY)
            requests.append(TransitionRequest(device_id=spare, event=Event.SWAP))
        before = _entries(ctx)
        with session_scope(ctx.engine) as s:
            entries = change_state(s, requests, actor="tech.one", witness="tech.two", verifier=verifier(ctx))
        assert _entries(ctx) == before + len(requests), edge
        with session_scope(ctx.engine) as s:
            device = s.get(Device, device_id)
            assert device is not None and device.state == edge.target, edge
        first = entries[0]
        assert (first.event, first.from_state, first.to_state) == (edge.event, edge.source, edge.target)


def test_every_other_pair_is_refused(ctx) -> None:
    device_id = receive(ctx, "REFUSE-1")
    move(ctx, device_id, Event.START_SANITISE)
    certify_all(ctx, device_id)
    refused = 0
    for state in State:
        with session_scope(ctx.engine) as s:
            force_state(s, device_id, state)
        for event in Event:
            if find_edge(event, state) is not None:
                continue
            before = _entries(ctx)
            with pytest.raises(InvalidTransition) as info, session_scope(ctx.engine) as s:
                change_state(
                    s,
                    [TransitionRequest(device_id=device_id, event=event)],
                    actor="tech.one",
                    witness="tech.two",
                    verifier=verifier(ctx),
                )
            assert info.value.state == state and info.value.event == event
            assert f"'{event}'" in info.value.reason and f"'{state}'" in info.value.reason
            assert _entries(ctx) == before
            with session_scope(ctx.engine) as s:
                assert s.get(Device, device_id).state == state  # type: ignore[union-attr]
            refused += 1
    expected = len(State) * len(Event) - sum(1 for e in TRANSITIONS if e.source is not None)
    assert refused == expected
