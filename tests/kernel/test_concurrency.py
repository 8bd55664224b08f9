"""Concurrent state changes: exactly the allowed ones succeed, and the chain never forks.

Runs on SQLite and PostgreSQL (the PostgreSQL run is the one that exercises row locks and the
ledger's advisory lock; SQLite serialises writers with BEGIN IMMEDIATE).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from harness.domain import receive, state_of, verifier
from sqlalchemy import text

from factory.kernel.db.engine import session_scope
from factory.kernel.errors import InvalidTransition
from factory.kernel.ledger.verify import verify_ledger
from factory.kernel.lifecycle.states import Event, State
from factory.kernel.lifecycle.transition import TransitionRequest, change_state

THREADS = 12


def _attempt(ctx, device_id: int, event: Event, barrier: threading.Barrier) -> str:
    barrier.wait()
    try:
        with session_scope(ctx.engine) as s:
            change_state(s, [TransitionRequest(device_id=device_id, event=event)], actor="t", verifier=verifier(ctx))
        return "ok"
    except InvalidTransition:
        return "refused"


def _assert_chain_sound(ctx, expected_entries: int) -> None:
    report = verify_ledger(ctx.engine)
    assert report.ok, report.reason
    assert report.entries == expected_entries
    with ctx.engine.connect() as conn:
        parents = conn.execute(text("SELECT count(DISTINCT prev_hash), count(*) FROM custody_entry")).one()
    assert parents[0] == parents[1]  # no two entries extend the same parent: no fork


def test_racing_events_on_one_device_exactly_one_wins(ctx) -> None:
    device_id = receive(ctx, "C-1")
    events = [Event.QUARANTINE, Event.START_SANITISE] * (THREADS // 2)
    barrier = threading.Barrier(THREADS)
    with ThreadPoolExecutor(THREADS) as pool:
        outcomes = list(pool.map(lambda e: _attempt(ctx, device_id, e, barrier), events))
    assert outcomes.count("ok") == 1 and outcomes.count("refused") == THREADS - 1
    assert state_of(ctx, "C-1") in (State.QUARANTINED, State.SANITISING)
    _assert_chain_sound(ctx, expected_entries=2)


def test_many_devices_in_parallel_keep_one_unforked_chain(ctx) -> None:
    ids = [receive(ctx, f"C-M{i}") for i in range(THREADS)]
    path = [Event.QUARANTINE, Event.TRIAGE, Event.START_SANITISE, Event.FAIL, Event.START_SANITISE, Event.FAIL]
    barrier = threading.Barrier(THREADS)

    def run(device_id: int) -> list[str]:
        return [_attempt(ctx, device_id, e, barrier if i == 0 else _NoBarrier()) for i, e in enumerate(path)]

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(run, ids))
    assert all(r == ["ok"] * len(path) for r in results)
    assert all(state_of(ctx, f"C-M{i}") == State.SANITISE_FAILED for i in range(THREADS))
    _assert_chain_sound(ctx, expected_entries=THREADS * (1 + len(path)))


def test_mixed_contention_only_allowed_transitions_land(ctx) -> None:
    """Pairs of threads fight over each device; each device advances exactly once per contested step."""
    ids = [receive(ctx, f"C-X{i}") for i in range(THREADS // 2)]
    barrier = threading.Barrier(THREADS)
    jobs = [(d, Event.QUARANTINE) for d in ids] + [(d, Event.QUARANTINE) for d in ids]
    with ThreadPoolExecutor(THREADS) as pool:
        outcomes = list(pool.map(lambda j: _attempt(ctx, j[0], j[1], barrier), jobs))
    assert outcomes.count("ok") == len(ids)
    _assert_chain_sound(ctx, expected_entries=2 * len(ids))


class _NoBarrier:
    def wait(self) -> None:
        return None
