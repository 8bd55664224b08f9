"""Custody ledger speed: append rates, and verify against the minimal read+hash loop, on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/ledger.py --entries 100000 1000000 --db sqlite postgresql [--rounds 3]

Appends go through the real ``append_entry`` (serialised head, canonical hash, the Merkle tree's
nodes kept): one entry per transaction (what a state change costs). The ledger is then filled to
each size with chained rows and their tree nodes computed by the same hashing and tree code and
inserted in bulk (a fixture, not a product path) with a
production-like shape: one device per ten entries (many serials), events in lifecycle order and
varied evidence (job ids, certificate id lists, document references, free text with non-ASCII
letters, allocation and transfer records), not one repeated small object.

Reference (the practical limit for verifying): a minimal loop that reads the same columns of the
same rows in seq order through the same raw DB-API cursor and batch size as ``verify_ledger``,
checks each row's link to its predecessor and hashes each row's stored bytes (its columns as stored,
evidence being its stored canonical JSON text) with SHA-256 - reading plus one hash per entry, no
canonicalisation. Projects: ``verify_ledger`` as ``factory ledger verify`` calls it (it decides on
worker processes itself), the user's command ``factory ledger verify --json`` as a new process
and, at sizes where the product may spawn workers, ``verify_ledger`` in one process and with as
many workers as CPUs are free by the load average (when that is 2 or more).

Proofs: at each size a tree head is signed (so verify also checks a signed root), then inclusion
proofs of random entries are made from the stored tree (``merkle.inclusion_proof`` over
``tree.node_source``) and checked: median and worst time per proof, audit path bytes (32 per
hash) and the JSON size of one entry's proof document (what ``factory ledger prove SEQ`` writes
per entry, the entry's own bytes included). Target: under 1 ms and 1 KB of path.

Method (benchmarks/fair.py): reference and projects alternate on the same database, the order
rotated round by round, at least 3 rounds; ratio = reference time / project time (1.0: verify
costs no more than reading and hashing), min / median / max, load average beside each figure.
A PostgreSQL database is created for the run (``df_bench_ledger_<pid>``) and dropped after it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine, insert

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fair import Figure, compare, free_cpus

from factory.kernel.clock import utc_now
from factory.kernel.db.engine import make_engine, read_scope, session_scope
from factory.kernel.db.migrate import upgrade
from factory.kernel.ledger import merkle
from factory.kernel.ledger.append import append_entry
from factory.kernel.ledger.hashing import ROW_COLUMNS, entry_bytes, evidence_text
from factory.kernel.ledger.heads import latest_head, sign_tree_head
from factory.kernel.ledger.proofs import inclusion_document
from factory.kernel.ledger.tree import frontier, node_source
from factory.kernel.ledger.verify import BATCH, PARALLEL_THRESHOLD, verify_ledger
from factory.kernel.models.custody_entry import GENESIS_HASH, CustodyEntry
from factory.kernel.models.device import Device
from factory.kernel.models.ledger_tree import LedgerNode
from imaging import signing

PG_ADMIN = os.environ.get("FACTORY_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
FACTORY = str(Path(sys.executable).parent / "factory")
PER_DEVICE = 10
LIFE = (
    ("receive", None, "received", "goods-in"),
    ("start_sanitise", "received", "sanitising", "site-1/bench-2/slot-3"),
    ("sanitised", "sanitising", "sanitised", "site-1/bench-2/slot-3"),
    ("start_provision", "sanitised", "provisioning", "site-1/bench-2/slot-3"),
    ("provisioned", "provisioning", "ready", "site-1/store"),
    ("allocate", "ready", "allocated", "site-1/store"),
    ("issue", "allocated", "issued", "site-1/counter"),
    ("return", "issued", "returned", "site-1/counter"),
    ("start_sanitise", "returned", "sanitising", "site-1/bench-1/slot-7"),
    ("sanitised", "sanitising", "sanitised", "site-1/bench-1/slot-7"),
)


def _evidence(seq: int, step: int) -> dict[str, Any]:
    """Evidence shaped like each event's in production, varied from entry to entry."""
    job = f"job-{seq:09d}"
    if step == 0:
        return {"new_stock": seq % 7 == 0, "media": [f"MED-{seq:09d}-{i}" for i in range(1 + seq % 3)]}
    if step in (2, 9):
        ids = [str(uuid.UUID(int=seq * 4 + i)) for i in range(1 + seq % 3)]
        return {"job": job, "slot": "bench-2/slot-3", "certificate_ids": ids,
                "document_hashes": [hashlib.sha256(i.encode()).hexdigest() for i in ids]}  # fmt: skip
    if step == 5:
        return {"allocation_id": seq, "reason": f"Beamte/r Müller-Łukasiewicz, Revier {seq % 97} — Ersatz"}
    if step == 6:
        doc = {"document_id": seq, "sha256": hashlib.sha256(str(seq).encode()).hexdigest(), "kind": "acceptance"}
        return {"allocation_id": seq, "acceptance": doc, "officer": f"PC{seq % 100000:05d}"}
    if step == 7:
        return {"reason": "screen cracked" if seq % 2 else "leaver", "notes": "étui manquant; 充電器なし"}
    return {"job": job, "slot": "bench-1/slot-7", "pipeline": ["sanitise", "provision"][: 1 + seq % 2]}


def _fresh_db(kind: str, workdir: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{workdir}/bench.db"
    name = f"df_bench_ledger_{os.getpid()}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")  # fails if it exists: never reuse or drop someone else's
    return PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + "/" + name


def _devices(engine: Engine, count: int) -> None:
    now = utc_now()
    for lo in range(0, count, 10_000):
        rows = [{"serial": f"BENCH-{i:08d}", "kind": "laptop", "created_at": now, "updated_at": now}
                for i in range(lo, min(count, lo + 10_000))]  # fmt: skip
        with engine.begin() as conn:
            conn.execute(insert(Device), rows)


def _append_rate(engine: Engine, count: int) -> float:
    t = time.perf_counter()
    for i in range(count):
        event, from_state, to_state, location = LIFE[i % PER_DEVICE]
        with session_scope(engine) as s:
            append_entry(
                s,
                device_id=1 + i // PER_DEVICE,
                device_serial=f"BENCH-{i // PER_DEVICE:08d}",
                event=event,
                from_state=from_state,
                to_state=to_state,
                actor="bench.technician",
                from_custodian="factory",
                to_custodian="factory",
                location=location,
                evidence=_evidence(i + 1, i % PER_DEVICE),
            )
    return count / (time.perf_counter() - t)


def _bulk_fill(engine: Engine, seq: int, prev: str, size: int) -> tuple[int, str]:
    with read_scope(engine) as conn:
        edge = frontier(conn, seq)  # the tree as the real appends left it
    now = utc_now()
    while seq < size:
        batch, nodes = [], []
        for _ in range(min(10_000, size - seq)):
            seq += 1
            device = (seq - 1) // PER_DEVICE
            event, from_state, to_state, location = LIFE[(seq - 1) % PER_DEVICE]
            row = {"seq": seq, "device_serial": f"BENCH-{device:08d}", "event": event, "from_state": from_state,
                   "to_state": to_state, "actor": f"tech.{seq % 41}", "from_custodian": "factory",
                   "to_custodian": "factory" if event != "issue" else f"officer-{seq % 5000}", "location": location,
                   "occurred_at": now, "evidence": evidence_text(_evidence(seq, (seq - 1) % PER_DEVICE)),
                   "prev_hash": prev, "device_id": 1 + device, "hash_version": 2}  # fmt: skip
            canonical = entry_bytes(row)
            row["entry_hash"] = prev = hashlib.sha256(canonical).hexdigest()
            nodes += [{"level": lv, "idx": ix, "hash": h} for lv, ix, h in edge.push(merkle.leaf_hash(canonical))]
            batch.append(row)
        with engine.begin() as conn:
            conn.execute(insert(CustodyEntry), batch)
            conn.execute(insert(LedgerNode), nodes)
    return seq, prev


def proof_figures(engine: Engine, size: int, samples: int = 300) -> dict[str, object]:
    """Inclusion proofs of random entries against the head signed at this size: time, path and JSON size."""
    import random

    rng = random.Random(size)
    times, path_bytes = [], []
    with session_scope(engine) as s:
        head = latest_head(s)
        assert head is not None and head.tree_size == size
        nodes, root = node_source(s), bytes.fromhex(head.root_hash)
        for _ in range(samples):
            index = rng.randrange(size)
            t = time.perf_counter()
            path = merkle.inclusion_proof(index, size, nodes)
            times.append(time.perf_counter() - t)
            path_bytes.append(32 * len(path))
        leaf_doc = inclusion_document(s, [rng.randrange(1, size + 1)], head)
        entry = leaf_doc["entries"][0]
        merkle.verify_inclusion(entry["leaf_index"], size, merkle.leaf_hash(entry["entry"].encode()),
                                [bytes.fromhex(p) for p in entry["audit_path"]], root)  # fmt: skip
    times.sort()
    return {"proof_ms_median": round(1000 * times[len(times) // 2], 3), "proof_ms_max": round(1000 * times[-1], 3),
            "audit_path_bytes_max": max(path_bytes), "proof_json_bytes_one_entry": len(json.dumps(entry)),
            "load_avg": os.getloadavg()[0]}  # fmt: skip


def read_and_hash(engine: Engine) -> int:
    """The reference: read the rows verify reads, link-check them and SHA-256 their stored bytes."""
    columns = ", ".join(ROW_COLUMNS)
    raw = engine.raw_connection()
    count, last = 0, GENESIS_HASH
    try:
        cur = raw.cursor()
        cur.execute(f"SELECT {columns} FROM custody_entry ORDER BY seq")
        while rows := cur.fetchmany(BATCH):
            for values in rows:
                if values[11] != last:
                    raise RuntimeError(f"reference loop: chain broken at {values[0]}")
                hashlib.sha256("\x1f".join(map(str, values[:14])).encode()).hexdigest()
                last = values[14]
                count += 1
        cur.close()
    finally:
        raw.close()
    return count


def _verify(engine: Engine, size: int, workers: int | None) -> None:
    report = verify_ledger(engine, workers=workers)
    if not (report.ok and report.entries == size):
        raise RuntimeError(f"verify failed: {report}")


def _cli_verify(home: str, url: str, size: int) -> None:
    env = {**os.environ, "FACTORY_HOME": home, "FACTORY_DATABASE_URL": url}
    done = subprocess.run([FACTORY, "ledger", "verify", "--json"], env=env, capture_output=True, text=True)
    if done.returncode != 0 or json.loads(done.stdout)["entries"] != size:
        raise RuntimeError(f"factory ledger verify failed: {done.stdout[-300:]} {done.stderr[-300:]}")


def measure(engine: Engine, url: str, home: str, size: int, rounds: int) -> list[Figure]:
    projects = {
        "verify_ledger (as the product calls it)": lambda: _verify(engine, size, None),
        "factory ledger verify --json": lambda: _cli_verify(home, url, size),
    }
    if size >= PARALLEL_THRESHOLD:  # below it the product runs one process anyway
        projects["verify_ledger, one process"] = lambda: _verify(engine, size, 1)
        # What choosing workers from the CPUs actually free (not the machine's count) would give.
        free = free_cpus()
        if free >= 2:
            projects[f"verify_ledger, {free} workers (free CPUs)"] = lambda: _verify(engine, size, free)
    return compare("minimal read + link check + SHA-256 loop", lambda: read_and_hash(engine), projects, rounds)


def run(kind: str, sizes: list[int], rounds: int) -> list[dict[str, object]]:
    results: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="df-bench-") as workdir:
        url = _fresh_db(kind, workdir)
        try:
            upgrade(url)
            engine = make_engine(url)
            _devices(engine, max(sizes) // PER_DEVICE + 1)
            single_rate = _append_rate(engine, 2000)
            key = signing.generate_private_key()
            with read_scope(engine) as conn:
                seq, head = 2000, conn.exec_driver_sql(
                    "SELECT entry_hash FROM custody_entry ORDER BY seq DESC LIMIT 1").scalar_one()  # fmt: skip
            for size in sorted(sizes):
                t, before = time.perf_counter(), seq
                seq, head = _bulk_fill(engine, seq, head, size)
                bulk_rate = (size - before) / (time.perf_counter() - t)
                with session_scope(engine) as s:
                    sign_tree_head(s, key, "bench")
                proofs = proof_figures(engine, size)
                print(f"{kind}, {size:,} entries ({size // PER_DEVICE:,} devices): append 1/txn with the tree "
                      f"{single_rate:.0f}/s, bulk fill {bulk_rate:.0f}/s; proofs {proofs}", flush=True)  # fmt: skip
                for figure in measure(engine, url, workdir, size, rounds):
                    results.append({"db": kind, "entries": size, "per_s_best": round(size / min(figure.project)),
                                    "append_1_per_txn_per_s": round(single_rate), **proofs,
                                    **figure.as_dict()})  # fmt: skip
            engine.dispose()
        finally:
            if kind == "postgresql":
                with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                    conn.execute(f"DROP DATABASE IF EXISTS df_bench_ledger_{os.getpid()} WITH (FORCE)")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--db", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds (at least 3)")
    args = parser.parse_args()
    if min(args.entries) < 2000:
        raise SystemExit("--entries: at least 2000 (the single-append sample)")
    for kind in args.db:
        for row in run(kind, args.entries, args.rounds):
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
