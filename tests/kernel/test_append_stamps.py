"""Rows that record a custody entry's seq (``SeqStamp``), and other rows (``RowBatch``), are written
with the entry, all or nothing; on PostgreSQL the entry, its tree nodes, the stamps and the rows are
one statement under the log's lock. A device row is locked once per transaction."""

from __future__ import annotations

import pytest
from harness.domain import receive
from sqlalchemy import event, select, text
from sqlalchemy.exc import IntegrityError

from factory.kernel.db.engine import session_scope
from factory.kernel.errors import NotFound
from factory.kernel.ledger.append import RowBatch, SeqStamp
from factory.kernel.ledger.verify import verify_ledger
from factory.kernel.lifecycle.states import Event
from factory.kernel.lifecycle.transition import TransitionRequest, change_state, lock_devices
from factory.kernel.models.custody_entry import CustodyEntry
from factory.kernel.models.device import Device, StorageMedium

DEVICE = Device.__table__  # type: ignore[attr-defined]


def _entries(ctx) -> int:
    with session_scope(ctx.engine) as s:
        return len(s.execute(select(CustodyEntry.seq)).all())


def test_a_stamp_gets_the_entry_seq_and_its_values(ctx) -> None:
    device_id = receive(ctx, "L-1")
    other = receive(ctx, "L-2")
    with session_scope(ctx.engine) as s:
        stamp = SeqStamp(DEVICE, other, "erase_round_seq", {"location": "shelf 4"})
        request = TransitionRequest(device_id, Event.START_SANITISE, stamps=(stamp,))
        entry = change_state(s, [request], actor="tech.one")[0]
        # The device's own seq column (an erase round opens) is written with the entry too, and the
        # loaded object shows it without another UPDATE.
        assert s.get(Device, device_id).erase_round_seq == entry.seq  # type: ignore[union-attr]
    with session_scope(ctx.engine) as s:
        stamped = s.get(Device, other)
        moved = s.get(Device, device_id)
        assert (stamped.erase_round_seq, stamped.location) == (entry.seq, "shelf 4")  # type: ignore[union-attr]
        assert (moved.state, moved.erase_round_seq) == ("sanitising", entry.seq)  # type: ignore[union-attr]
    assert verify_ledger(ctx.engine).ok


def test_a_failing_stamp_takes_the_entry_with_it(ctx) -> None:
    device_id = receive(ctx, "L-1")
    receive(ctx, "L-2")
    before = _entries(ctx)
    # The stamp would give device L-1 the serial L-2 has: the unique serial refuses it.
    clash = SeqStamp(DEVICE, device_id, "erase_round_seq", {"serial": "L-2"})
    with pytest.raises(IntegrityError), session_scope(ctx.engine) as s:
        change_state(s, [TransitionRequest(device_id, Event.START_SANITISE, stamps=(clash,))], actor="tech.one")
    assert _entries(ctx) == before
    with session_scope(ctx.engine) as s:
        device = s.get(Device, device_id)
        assert (device.state, device.erase_round_seq) == ("received", None)  # type: ignore[union-attr]
    assert verify_ledger(ctx.engine).ok


def test_postgresql_writes_entry_nodes_and_stamps_in_one_statement(ctx) -> None:
    if ctx.engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs in-process and has no data-modifying CTEs")
    device_id = receive(ctx, "L-1")
    other = receive(ctx, "L-2")
    seen: list[str] = []

    def note(conn, cursor, statement, *args) -> None:
        seen.append(statement)

    event.listen(ctx.engine, "before_cursor_execute", note)
    try:
        with session_scope(ctx.engine) as s:
            stamp = SeqStamp(DEVICE, other, "erase_round_seq")
            change_state(s, [TransitionRequest(device_id, Event.START_SANITISE, stamps=(stamp,))], actor="tech.one")
    finally:
        event.remove(ctx.engine, "before_cursor_execute", note)
    locked = next(n for n, sql in enumerate(seen) if "pg_advisory_xact_lock" in sql)
    under_lock = seen[locked + 1 :]
    # The head read, then one write: entry, tree nodes, the stamp and the device's own round seq.
    assert len(under_lock) == 2, under_lock
    write = under_lock[1]
    assert write.startswith("WITH ") and write.count("UPDATE ") == 2 and "INSERT INTO ledger_node" in write
    with session_scope(ctx.engine) as s:
        seq = s.execute(text("SELECT max(seq) FROM custody_entry")).scalar()
        assert s.get(Device, other).erase_round_seq == seq  # type: ignore[union-attr]


MEDIUM = StorageMedium.__table__  # type: ignore[attr-defined]


def _media(ctx, device_id: int) -> list[str]:
    with session_scope(ctx.engine) as s:
        return sorted(s.execute(select(StorageMedium.serial).where(StorageMedium.device_id == device_id)).scalars())


def _batch(device_id: int, *serials: str) -> RowBatch:
    rows = [
        {"device_id": device_id, "serial": serial, "model": "", "media_type": "nvme", "capacity_bytes": 1}
        for serial in serials
    ]
    return RowBatch(MEDIUM, rows)


def test_row_batches_are_inserted_with_the_entry(ctx) -> None:
    device_id = receive(ctx, "L-1", media=("M1",))
    with session_scope(ctx.engine) as s:
        request = TransitionRequest(device_id, Event.START_SANITISE, rows=(_batch(device_id, "X1", "X2"),))
        change_state(s, [request], actor="tech.one")
    assert _media(ctx, device_id) == ["M1", "X1", "X2"]
    assert verify_ledger(ctx.engine).ok


def test_a_failing_row_batch_takes_the_entry_with_it(ctx) -> None:
    device_id = receive(ctx, "L-1", media=("M1",))
    before = _entries(ctx)
    clash = _batch(device_id, "X1", "M1")  # M1 is recorded on the device already: the unique pair refuses it
    with pytest.raises(IntegrityError), session_scope(ctx.engine) as s:
        change_state(s, [TransitionRequest(device_id, Event.START_SANITISE, rows=(clash,))], actor="tech.one")
    assert _entries(ctx) == before
    assert _media(ctx, device_id) == ["M1"]
    with session_scope(ctx.engine) as s:
        assert s.get(Device, device_id).state == "received"  # type: ignore[union-attr]


def test_a_device_is_locked_once_per_transaction(ctx) -> None:
    device_id = receive(ctx, "L-1")
    selects: list[str] = []

    def note(conn, cursor, statement, *args) -> None:
        if statement.lstrip().startswith("SELECT device."):
            selects.append(statement)

    event.listen(ctx.engine, "before_cursor_execute", note)
    try:
        with session_scope(ctx.engine) as s:
            first = lock_devices(s, [device_id])[device_id]
            change_state(s, [TransitionRequest(device_id, Event.START_SANITISE)], actor="tech.one")
            assert lock_devices(s, [device_id])[device_id] is first and first.state == "sanitising"
        assert len(selects) == 1
        with session_scope(ctx.engine) as s:  # a new transaction holds no lock yet
            assert lock_devices(s, [device_id])[device_id].state == "sanitising"
        assert len(selects) == 2
    finally:
        event.remove(ctx.engine, "before_cursor_execute", note)
    with pytest.raises(NotFound), session_scope(ctx.engine) as s:
        lock_devices(s, [device_id, 10_000])
