"""Custody ledger speed: append and verify rates on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/ledger.py --entries 100000 1000000 --db sqlite postgresql

Appends go through the real ``append_entry`` (serialised head, canonical hash). Two append rates
are reported: one entry per transaction (what a state change costs) and 1000 per transaction
(bulk fill). Verify is ``verify_ledger`` over the whole table. Target: verify >= 200k entries/s.
The plain-tool reference is a bare ``SELECT`` of the same rows: verify's cost over just reading.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import psycopg
from sqlalchemy import insert

from factory.kernel.clock import utc_now
from factory.kernel.db.engine import make_engine, session_scope
from factory.kernel.db.migrate import upgrade
from factory.kernel.ledger.append import append_entry
from factory.kernel.ledger.hashing import entry_hash, evidence_text
from factory.kernel.ledger.verify import verify_ledger
from factory.kernel.models.custody_entry import GENESIS_HASH, CustodyEntry
from factory.kernel.models.device import Device

PG_ADMIN = os.environ.get("FACTORY_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
DEVICES = 1000


def _fresh_db(kind: str, workdir: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{workdir}/bench.db"
    name = f"df_bench_{os.getpid()}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + "/" + name


def _append(session, i: int) -> None:
    append_entry(
        session,
        device_id=1 + i % DEVICES,
        device_serial=f"BENCH-{i % DEVICES:06d}",
        event="start_sanitise",
        from_state="returned",
        to_state="sanitising",
        actor="bench.technician",
        from_custodian="factory",
        to_custodian="factory",
        location="site-1/bench-2/slot-3",
        evidence={"job": f"job-{i}", "certificate_ids": [], "document_hashes": []},
    )


def _head(engine) -> tuple[int, str]:
    with engine.connect() as conn:
        row = conn.exec_driver_sql("SELECT seq, entry_hash FROM custody_entry ORDER BY seq DESC LIMIT 1").first()
    return (row[0], row[1]) if row else (0, GENESIS_HASH)


def _bulk_fill(engine, seq: int, prev: str, size: int) -> tuple[int, str]:
    now = utc_now()
    while seq < size:
        batch = []
        for _ in range(min(10_000, size - seq)):
            seq += 1
            row = {
                "seq": seq,
                "device_serial": f"BENCH-{seq % DEVICES:06d}",
                "event": "start_sanitise",
                "from_state": "returned",
                "to_state": "sanitising",
                "actor": "bench.technician",
                "from_custodian": "factory",
                "to_custodian": "factory",
                "location": "site-1/bench-2/slot-3",
                "occurred_at": now,
                "evidence": evidence_text({"job": f"job-{seq}", "certificate_ids": [], "document_hashes": []}),
                "prev_hash": prev,
            }
            row["entry_hash"] = prev = entry_hash(row)
            row["device_id"] = 1 + seq % DEVICES
            batch.append(row)
        with engine.begin() as conn:
            conn.execute(insert(CustodyEntry), batch)
    return seq, prev


def run(kind: str, sizes: list[int]) -> list[dict[str, object]]:
    results = []
    with tempfile.TemporaryDirectory(prefix="df-bench-") as workdir:
        url = _fresh_db(kind, workdir)
        upgrade(url)
        engine = make_engine(url)
        now = utc_now()
        with session_scope(engine) as s:
            s.add_all(
                [Device(serial=f"BENCH-{i:06d}", kind="laptop", created_at=now, updated_at=now) for i in range(DEVICES)]
            )
        single = 2000
        t = time.perf_counter()
        for i in range(single):
            with session_scope(engine) as s:
                _append(s, i)
        single_rate = single / (time.perf_counter() - t)
        done = single
        head_seq, head_hash = _head(engine)
        for size in sorted(sizes):
            # Fill up to ``size`` with chained rows computed by the same hashing code, inserted in bulk:
            # a benchmark fixture, not a product path (the product appends one entry per state change).
            t = time.perf_counter()
            head_seq, head_hash = _bulk_fill(engine, head_seq, head_hash, size)
            bulk_rate = (size - done) / (time.perf_counter() - t) if size > done else float("nan")
            done = size
            t = time.perf_counter()
            with engine.connect() as conn:
                rows = conn.exec_driver_sql("SELECT * FROM custody_entry ORDER BY seq").fetchall()
            read_s = time.perf_counter() - t
            del rows
            t = time.perf_counter()
            report = verify_ledger(engine)
            verify_s = time.perf_counter() - t
            assert report.ok and report.entries == size, report
            row = {
                "db": kind,
                "entries": size,
                "append_1_per_txn_per_s": round(single_rate),
                "bulk_fill_per_s": round(bulk_rate),
                "verify_per_s": round(size / verify_s),
                "bare_select_per_s": round(size / read_s),
                "verify_vs_bare_select": round(read_s / verify_s, 3),
            }
            print(row, flush=True)
            results.append(row)
        engine.dispose()
        if kind == "postgresql":
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS df_bench_{os.getpid()} WITH (FORCE)")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--db", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    for kind in args.db:
        run(kind, args.entries)


if __name__ == "__main__":
    main()
