"""The one function that changes a device's state: ``change_state``.

In the caller's database transaction it locks the device rows (in id order, so paired changes
cannot deadlock), checks each edge against the table and its guard, writes the new state and
appends exactly one custody entry per device. A paired change (exchange, swap) is all or nothing:
any refusal raises before anything is flushed, and the caller's transaction rolls back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session

from factory.kernel.clock import utc_now
from factory.kernel.db.shared_statements import warmed
from factory.kernel.errors import InvalidInput, InvalidTransition, NotFound
from factory.kernel.ledger.append import RowBatch, SeqStamp, append_entry
from factory.kernel.lifecycle.guards import CertificateVerifier, GuardInput, check_guard
from factory.kernel.lifecycle.states import Event, State
from factory.kernel.lifecycle.table import TAINTING_EVENTS, Edge, find_edge
from factory.kernel.models.custody_entry import CustodyEntry
from factory.kernel.models.device import Device


@dataclass(frozen=True)
class TransitionRequest:
    device_id: int
    event: Event
    to_custodian: str | None = None  # None: unchanged
    location: str | None = None  # None: unchanged
    evidence: dict[str, Any] = field(default_factory=dict)
    new_stock: bool = False  # only meaningful for "receive"
    required_destination: str | None = None  # certificates must name this destination
    stamps: tuple[SeqStamp, ...] = ()  # rows that record the entry's seq (a job step), written with it
    rows: tuple[RowBatch, ...] = ()  # rows of other tables written with it (a job's log lines)


def change_state(
    session: Session,
    requests: Sequence[TransitionRequest],
    *,
    actor: str,
    witness: str | None = None,
    verifier: CertificateVerifier | None = None,
) -> list[CustodyEntry]:
    """Apply ``requests`` (one per device) as one all-or-nothing change; one custody entry each.

    :raises InvalidInput: no request, no actor, or a device named twice.
    :raises NotFound: a device id that does not exist.
    :raises InvalidTransition: the table has no edge for an event from a device's state.
    :raises GuardRefused: an edge's guard refuses (certificates, new stock, witness, pairing).
    """
    _check_requests(requests, actor)
    devices = lock_devices(session, sorted(r.device_id for r in requests))
    paired = len(requests) > 1
    planned: list[tuple[TransitionRequest, Device, Edge]] = []
    for req in requests:
        device = devices[req.device_id]
        planned.append((req, device, _checked_edge(session, req, device, actor, witness, paired, verifier)))
    # Every check passed: now write. Nothing above has modified anything.
    now = utc_now()
    entries = [_apply(session, req, device, edge, actor, witness, now) for req, device, edge in planned]
    session.flush()
    return entries


def _check_requests(requests: Sequence[TransitionRequest], actor: str) -> None:
    if not requests:
        raise InvalidInput("no transition requested")
    if not actor:
        raise InvalidInput("a transition needs an actor")
    ids = [r.device_id for r in requests]
    if len(set(ids)) != len(ids):
        raise InvalidInput("a device may appear only once in one change")


def _checked_edge(
    session: Session,
    req: TransitionRequest,
    device: Device,
    actor: str,
    witness: str | None,
    paired: bool,
    verifier: CertificateVerifier | None,
) -> Edge:
    """The table's edge for this request from the device's state, once its guard has passed."""
    source = State(device.state) if device.state is not None else None
    edge = find_edge(Event(req.event), source)
    if edge is None:
        raise InvalidTransition(device.serial, device.state, str(req.event))
    guard = GuardInput(
        device=device,
        edge=edge,
        actor=actor,
        witness=witness,
        paired=paired,
        new_stock=req.new_stock,
        verifier=verifier,
        required_destination=req.required_destination,
    )
    check_guard(session, guard)
    return edge


def _apply(
    session: Session, req: TransitionRequest, device: Device, edge: Edge, actor: str, witness: str | None, now: str
) -> CustodyEntry:
    """Append the device's custody entry and move the device: the only write of ``device.state``."""
    evidence = dict(req.evidence)
    if witness:
        evidence.setdefault("witness", witness)
    to_custodian = req.to_custodian if req.to_custodian is not None else device.custodian
    location = _location_after(req, device, to_custodian)
    from_state, from_custodian = device.state, device.custodian
    # Whatever else the caller changed goes first; the device's move is written with its entry (in
    # the same statement on PostgreSQL, where every round trip under the log's lock delays every
    # other writer to the log): the loaded row only catches up, unflagged.
    session.flush()
    moved = {"state": str(edge.target), "custodian": to_custodian, "location": location, "updated_at": now}
    for column, value in moved.items():
        set_committed_value(device, column, value)
    seq_columns = _seq_columns(req, edge)
    entry = append_entry(
        session,
        device_id=device.id or 0,
        device_serial=device.serial,
        event=str(edge.event),
        from_state=from_state,
        to_state=str(edge.target),
        actor=actor,
        from_custodian=from_custodian,
        to_custodian=to_custodian,
        location=location,
        evidence=evidence,
        occurred_at=now,
        stamps=(
            *req.stamps,
            SeqStamp(_DEVICE, device.id or 0, None, moved),
            *(SeqStamp(_DEVICE, device.id or 0, column) for column in seq_columns),
        ),
        rows=req.rows,
    )
    for column in seq_columns:  # written with the entry: the loaded row only catches up, unflagged
        set_committed_value(device, column, entry.seq)
    return entry


_DEVICE = Device.__table__  # type: ignore[attr-defined]


def _seq_columns(req: TransitionRequest, edge: Edge) -> tuple[str, ...]:
    """The device's columns that take this entry's seq: where its user data began (a return, or a
    tainting event), and the erase round it opens."""
    columns = []
    if (edge.event is Event.RECEIVE and not req.new_stock) or (edge.event, edge.target) in TAINTING_EVENTS:
        columns.append("user_data_since_seq")
    if edge.event is Event.START_SANITISE:
        columns.append("erase_round_seq")
    return tuple(columns)


def _location_after(req: TransitionRequest, device: Device, to_custodian: str) -> str:
    """Where the device is after the event: where the step says; else, when it changes hands, with
    its new custodian (the bench slot it was last seen in is no longer where it is); else unchanged."""
    if req.location is not None:
        return req.location
    if to_custodian != device.custodian:
        return to_custodian
    return device.location


def lock_devices(session: Session, ids: Sequence[int]) -> dict[int, Device]:
    """The devices named, their rows locked until the transaction ends (PostgreSQL: FOR NO KEY
    UPDATE, in id order, which leaves the foreign-key checks of rows naming them free, as
    ``line.slots.locked`` says why; SQLite's writer lock covers it), refreshed from the database as
    they are locked.

    A row this transaction already locked is not selected again: no one else can have changed it
    since, and a step's transaction locks its device first and then changes its state, which
    would otherwise lock it a second time (a round trip for nothing). Rows are taken in id order
    within one call only: a caller that locks devices one call at a time and then several at once
    (none does today; paired changes lock all theirs in one call) must go in id order itself, or
    two such transactions can deadlock.

    :raises NotFound: an id with no device.
    """
    held = _held_devices(session)
    todo = sorted({i for i in ids if i not in held})
    if todo:
        stmt = _LOCK_DEVICES[session.get_bind().dialect.name == "postgresql"]
        for device in session.execute(stmt, {"device_ids": todo}).scalars():
            held[device.id or 0] = device
    missing = [i for i in ids if i not in held]
    if missing:
        raise NotFound(f"no device with id {missing[0]}")
    return {i: held[i] for i in ids}


# Built once (every transition locks its device): a fresh statement costs more CPU than its round
# trip. populate_existing: a row locked now must not be served from a stale identity map.
_DEVICES_BY_ID = warmed(select(Device).where(Device.id.in_(bindparam("device_ids", expanding=True))))  # type: ignore[union-attr]
_IN_ID_ORDER = warmed(_DEVICES_BY_ID.order_by(Device.id).execution_options(populate_existing=True))  # type: ignore[arg-type]
# By "is it PostgreSQL".
_LOCK_DEVICES = {True: warmed(_IN_ID_ORDER.with_for_update(key_share=True)), False: warmed(_IN_ID_ORDER)}


def remember_locked(session: Session, device: Device) -> None:
    """Record that this transaction holds ``device``'s row lock, taken by a statement of the
    caller's own (as the line's ownership check, which locks the job and its device in one round
    trip): :func:`lock_devices` then selects it no more."""
    _held_devices(session)[device.id or 0] = device


def _held_devices(session: Session) -> dict[int, Device]:
    """The devices locked in the session's innermost transaction (a savepoint's locks end with it)."""
    session.connection()  # begins the transaction if nothing has yet: its identity is the key
    transaction = session.get_nested_transaction() or session.get_transaction()
    mark = session.info.get(_HELD)
    if mark is None or mark[0] is not transaction:
        mark = session.info[_HELD] = (transaction, {})
    return mark[1]  # type: ignore[no-any-return]


_HELD = "factory.locked_devices"
