"""verify_ledger with worker processes gives the report one process gives, intact or broken, on both databases."""

from __future__ import annotations

import hashlib
import os

import pytest
from sqlalchemy import Engine, insert, text

from factory.kernel.clock import utc_now
from factory.kernel.db.append_only import drop_statements
from factory.kernel.db.engine import session_scope
from factory.kernel.ledger import verify, verify_rows
from factory.kernel.ledger.append import append_entry
from factory.kernel.ledger.heads import sign_tree_head
from factory.kernel.models.device import Device
from imaging import signing

ENTRIES = 300  # two worker ranges: 1..256 (this process) and 257..300 (a worker)
TAMPER = {
    "intact": [],
    "edited without rehash": ["UPDATE custody_entry SET actor = 'mallory' WHERE seq = 270"],
    "removed inside the first range": ["DELETE FROM custody_entry WHERE seq = 200"],
    "last of the first range removed": ["DELETE FROM custody_entry WHERE seq = 256"],
    "first of the worker's range removed": ["DELETE FROM custody_entry WHERE seq = 257"],
    "link broken at the range boundary": [f"UPDATE custody_entry SET prev_hash = '{'f' * 64}' WHERE seq = 257"],
    "version lowered in the worker's range": ["UPDATE custody_entry SET hash_version = 1 WHERE seq = 280"],
}


def _fill(engine: Engine) -> None:
    now = utc_now()
    with engine.begin() as conn:
        conn.execute(insert(Device), [{"serial": f"P-{i}", "kind": "laptop", "created_at": now, "updated_at": now}
                                      for i in range(ENTRIES // 10)])  # fmt: skip
    key = signing.generate_private_key()
    with session_scope(engine) as s:
        for i in range(ENTRIES):
            evidence = {"job": f"job-{i}", "notes": "étui manquant; 充電器なし", "n": i, "ids": [i, {"k": None}]}
            append_entry(s, device_id=1 + i // 10, device_serial=f"P-{i // 10}", event="receive", from_state=None,
                         to_state="received", actor="tech", from_custodian="factory", to_custodian="factory",
                         location="goods-in", evidence=evidence)  # fmt: skip
            if i + 1 in (150, 280):  # one signed head in each range
                sign_tree_head(s, key, "test-site")


def _tamper(engine: Engine, statements: list[str]) -> None:
    with engine.begin() as conn:
        if statements:
            for stmt in drop_statements(engine.dialect.name, "custody_entry"):
                conn.execute(text(stmt))
        for stmt in statements:
            conn.execute(text(stmt))


@pytest.mark.parametrize("case", list(TAMPER))
def test_workers_and_one_process_give_the_same_report(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    _fill(engine)
    _tamper(engine, TAMPER[case])
    monkeypatch.setattr(verify_rows, "BATCH", 64)  # several batches per range in this process
    serial = verify.verify_ledger(engine, workers=1)
    started: list[tuple[int, int]] = []
    start = verify._start_worker

    def spy(engine: Engine, log: str, lo: int, hi: int, sizes: frozenset[int]):  # type: ignore[no-untyped-def]
        started.append((lo, hi))
        return start(engine, log, lo, hi, sizes)

    monkeypatch.setattr(verify, "_start_worker", spy)
    monkeypatch.setattr(verify, "PARALLEL_THRESHOLD", 0)
    parallel = verify.verify_ledger(engine, workers=2)
    assert started == [(257, ENTRIES + 1)]
    assert parallel.as_dict() == serial.as_dict()
    assert serial.ok is (case == "intact")
    if serial.ok:
        assert serial.entries == ENTRIES and serial.heads_checked == 2 and serial.signed_size == 280


def test_a_duplicate_member_forged_with_its_hash_fails_in_a_worker_as_in_one_process(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(engine)
    forged = '{"reason":"nothing wrong","reason":"cracked screen"}'
    with engine.connect() as conn:
        row = dict(conn.execute(text(f"SELECT {', '.join(verify_rows.ROW_COLUMNS)} FROM custody_entry WHERE seq = 290"))
                   .one()._mapping)  # fmt: skip
    # A forger splices the text verbatim and stores the hash of those bytes: only the duplicate check refuses it.
    digest = hashlib.sha256(forged.encode()).hexdigest()
    values = tuple(
        forged if c == "evidence" else digest if c == "entry_hash" else row[c] for c in verify_rows.ROW_COLUMNS
    )
    assert verify_rows.batch_leaves([values], row["hash_version"]) is None  # the batch path declines it
    _tamper(engine, [f"UPDATE custody_entry SET evidence = '{forged}', entry_hash = '{digest}' WHERE seq = 290"])
    serial = verify.verify_ledger(engine, workers=1)
    monkeypatch.setattr(verify, "PARALLEL_THRESHOLD", 0)
    assert verify.verify_ledger(engine, workers=2).as_dict() == serial.as_dict()
    assert not serial.ok and serial.broken_seq == 290 and "twice" in (serial.reason or "")


def test_free_cpus_does_not_count_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    cpus = len(os.sched_getaffinity(0))
    # The 1-minute load average holds this process's own recent work (a benchmark loop, a verify before).
    monkeypatch.setattr(verify.os, "getloadavg", lambda: (1.0, 1.0, 1.0))
    monkeypatch.setattr(verify, "_runnable_others", lambda: 0)
    assert verify.free_cpus() == cpus
    monkeypatch.setattr(verify, "_runnable_others", lambda: 40)  # others busy now: the load average decides
    assert verify.free_cpus() == max(1, round(cpus - 1.0))


def test_runnable_others_leaves_this_process_out() -> None:
    assert verify._runnable_others() >= 0
