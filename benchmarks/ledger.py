"""Custody ledger speed: append rates, proofs, and verify against the minimal read+hash loop, SQLite and PostgreSQL.

    .venv/bin/python benchmarks/ledger.py --entries 100000 1000000 --db sqlite postgresql [--rounds 3]
        [--crossover] [--tree-only 10000000]

Appends go through the real ``append_entry`` (serialised head, canonical hash, the Merkle tree's
nodes kept): one entry per transaction (what a state change costs). The ledger is then filled to
each size by ``ledger_fill`` (a fixture, not a product path: chained version-2 rows and their tree
nodes hashed as the product hashes them, checked against the reference canonical form every 997th
row, written by executemany in 50k-row transactions on SQLite and COPY on PostgreSQL) with a
production-like shape: one device per ten entries (many serials), events in lifecycle order and
varied evidence (job ids, certificate id lists, document references, free text with non-ASCII
letters, allocation and transfer records), not one repeated small object.

Reference (the practical limit for verifying): a minimal loop that reads the same columns of the
same rows in seq order through the same DB-API cursor (server-side on PostgreSQL: ``open_cursor``)
and batch size (``row_batches``) as ``verify_ledger``, checks each row's link to its predecessor
and hashes each row's stored bytes (its columns as stored, joined; evidence its stored JSON text)
with SHA-256 once - reading plus one hash per entry, no canonical form, no tree, no duplicate-key
check. (Verify does all of those: rebuilds each entry's canonical bytes, hashes them twice, as
``entry_hash`` and as a Merkle leaf, plus about one node hash per entry, and checks signed heads.)
Projects: ``verify_ledger`` as ``factory ledger verify`` calls it (workers only when the log is
over ``PARALLEL_THRESHOLD`` and CPUs are free by the load average), the user's command ``factory
ledger verify --json`` as a new process and, over the threshold (or at every size with
``--crossover``, to find where spawning starts to pay), ``verify_ledger`` in one process and with
2 workers forced whatever the load.

Proofs: at each size a tree head is signed (so verify also checks a signed root), then inclusion
proofs of random entries are made from the stored tree (``merkle.inclusion_proof`` over
``tree.node_source``) and checked: median and worst time per proof, audit path bytes (32 per
hash) and the JSON size of one entry's proof document (what ``factory ledger prove SEQ`` writes
per entry, the entry's own bytes included). Target: under 1 ms and 1 KB of path. ``--tree-only
N``: the same proof figures on a tree of N synthetic leaves (its nodes written in bulk, no entries),
for sizes such as 10M whose entries take long to fill on a small machine.

Method (benchmarks/fair.py): reference and projects alternate on the same database, the order
rotated round by round, at least 3 rounds; ratio = reference time / project time (1.0: verify
costs no more than reading and hashing), min / median / max, load average beside each figure.
A PostgreSQL database is created for the run (``df_bench_ledger_<pid>``) and dropped after it.

Measured 6 Dec 2026 on a quiet 2-CPU machine (nothing else running), 1M entries, 3 alternated rounds,
ratio min/median/max, after the runnable count took the least of its samples (a CLI verify on
PostgreSQL had run in one process):
  SQLite (load 1.0 -> 1.4; the loop 5.0-5.2 s): as the product calls it 0.77/0.94/0.98 (best 5.2 s);
  factory ledger verify --json 0.84/0.92/0.94; one process 0.49/0.56/0.58; 2 workers forced
  0.94/1.01/1.03. Appends with the tree 1258/s; proofs 0.35 ms median, 640 bytes of path.
  PostgreSQL (load 1.3 -> 1.8; the loop 6.1 s best): as called 0.97/0.99/1.03 (best 5.9 s); CLI
  0.93/0.95/0.99 (before that fix 0.51/0.57/0.60 at load 1.1 -> 1.6: one process); one process
  0.51/0.58/0.59; 2 workers forced 0.86/0.96/1.06. Appends with the tree 539/s; proofs 0.59 ms.
  Target 0.9 met on both where a second CPU is free; one process stays near 0.6 (below).
Measured 7 Dec 2026 on another host, the same code, nothing else running, 1M entries, 3 alternated
rounds, ratio min/median/max:
  SQLite (load 1.0 -> 1.4; the loop 6.2-6.9 s): as the product calls it 0.99/1.00/1.06 (best 6.3 s);
  factory ledger verify --json 0.93/0.96/0.97; one process 0.53/0.54/0.59; 2 workers forced
  0.98/1.02/1.09. Appends with the tree 667/s; proofs 0.82 ms median, 640 bytes of path.
  PostgreSQL (load 1.2 -> 1.6; the loop 6.4 s best): as called 0.94/1.13/1.18 (best 6.6 s); CLI
  0.86/1.01/1.07; one process 0.54/0.63/0.63; 2 workers forced 0.95/1.04/1.14. Appends with the
  tree 436/s; proofs 0.81 ms median.
Measured earlier the same day on a shared 2-CPU machine, 1M entries, 3 alternated rounds, ratio min/median/max
(verify time vs the loop's; load average before -> after), after the certificate check stopped
re-reading the entries and ``free_cpus`` stopped counting verify's own process (fe81fde):
  SQLite (load 4.8 -> 5.0; the loop itself took 6.2-12.3 s): as the product calls it 0.26/0.58/0.64
  (best 12.2 s vs 6.2 s); one process 0.28/0.42/0.74; 2 workers forced 0.33/0.33/0.74; CLI 0.28/0.62/0.77.
  PostgreSQL (load 4.6 -> 3.6): as called 0.39/0.47/0.61; one process 0.55/0.60/0.68; 2 workers forced
  0.63/0.65/0.70 (best 10.2 s vs 7.1 s); CLI 0.44/0.51/0.57. Target 0.9 not reached on this machine.
  One process costs ~8 us of CPU per entry on SQLite against the loop's ~5.3 (200k entries, CPU time):
  reading 3.1 us is shared; verify's 3 SHA-256 (entry, leaf, ~1 node) + one JSON parse and one
  serialisation per entry is ~4.5 us against the loop's join + one SHA-256 at ~2.1 us, so one process
  tops out near 0.7; 0.9 and above needs the second CPU free (2 workers split 1M entries 524,288/475,712).
  Before (6 Dec, load 4.3 SQLite, 10.2 -> 6.1 PostgreSQL): SQLite 0.48/0.62/0.65 as called, CLI 0.38/0.43/0.62;
  PostgreSQL 0.44/0.44/1.00, CLI 0.20/0.39/0.41.
  Append one entry per transaction with the tree: SQLite 136-224/s, PostgreSQL 11-138/s (load 5-20).
  Proofs: 1M SQLite 0.38-0.47 ms median, 640 bytes of path (load 4-5); 1M PostgreSQL 0.64 ms (load 4.6;
  2.5 ms at load 10 before e6f7296 and 3b8dd1d);
  10M leaves (--tree-only, SQLite, 615 s to build) 0.87 ms median, 24 ms worst, 768 bytes (load 4.4).
  One entry's proof document (entry bytes included, hex path) is about 2 KB as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine, insert

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fair import Figure, compare, compile_project, free_cpus, fresh_postgres
from ledger_fill import LIFE, LOG, PER_DEVICE, fill, tree_only
from ledger_fill import evidence as _evidence

from factory.kernel.clock import utc_now
from factory.kernel.db.engine import make_engine, read_scope, session_scope
from factory.kernel.db.migrate import upgrade
from factory.kernel.ledger import merkle, verify
from factory.kernel.ledger.append import append_entry
from factory.kernel.ledger.heads import latest_head, sign_tree_head
from factory.kernel.ledger.proofs import inclusion_document
from factory.kernel.ledger.tree import frontier, node_source
from factory.kernel.ledger.verify import PARALLEL_THRESHOLD, verify_ledger
from factory.kernel.ledger.verify_rows import VERSION, first_link, row_batches
from factory.kernel.ledger.verify_worker import log_select, open_cursor
from factory.kernel.models.device import Device
from imaging import signing

FACTORY = str(Path(sys.executable).parent / "factory")


@contextlib.contextmanager
def _fresh_db(kind: str, workdir: str) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{workdir}/bench.db"
        return
    with fresh_postgres("df_bench_ledger") as url:  # made for this run, dropped after: never someone else's
        yield url


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


def _proof_times(nodes: merkle.NodeSource, size: int, root: bytes, samples: int = 300) -> dict[str, object]:
    """Inclusion proofs of random leaves read from the stored tree: time to make one, its path size; all verified."""
    import random

    rng = random.Random(size)
    times, path_bytes = [], []
    for _ in range(samples):
        index = rng.randrange(size)
        t = time.perf_counter()
        path = merkle.inclusion_proof(index, size, nodes)
        times.append(time.perf_counter() - t)
        path_bytes.append(32 * len(path))
        leaf = nodes([(0, index)])[(0, index)]
        merkle.verify_inclusion(index, size, leaf, path, root)
    times.sort()
    return {"proof_ms_median": round(1000 * times[len(times) // 2], 3), "proof_ms_max": round(1000 * times[-1], 3),
            "audit_path_bytes_max": max(path_bytes), "load_avg": os.getloadavg()[0]}  # fmt: skip


def proof_figures(engine: Engine, size: int) -> dict[str, object]:
    """Proofs against the head signed at this size, and the JSON size of one entry's proof document."""
    with session_scope(engine) as s:
        head = latest_head(s, LOG)
        assert head is not None and head.tree_size == size
        root = bytes.fromhex(head.root_hash)
        figures = _proof_times(node_source(s, LOG), size, root)
        entry = inclusion_document(s, [1 + size // 2], head)["entries"][0]
        merkle.verify_inclusion(entry["leaf_index"], size, merkle.leaf_hash(entry["entry"].encode()),
                                [bytes.fromhex(p) for p in entry["audit_path"]], root)  # fmt: skip
    return {**figures, "proof_json_bytes_one_entry": len(json.dumps(entry))}


def tree_proofs(kind: str, size: int) -> dict[str, object]:
    """Proof figures on a tree of ``size`` synthetic leaves (nodes only: no entries to fill)."""
    with tempfile.TemporaryDirectory(prefix="df-bench-tree-") as workdir:
        with _fresh_db(kind, workdir) as url:
            upgrade(url)
            engine = make_engine(url)
            t = time.perf_counter()
            root = tree_only(engine, size)
            built = time.perf_counter() - t
            with engine.connect() as conn:
                figures = _proof_times(node_source(conn, LOG), size, root)
            engine.dispose()
    return {"db": kind, "tree_only_leaves": size, "build_s": round(built, 1), **figures}


def read_and_hash(engine: Engine) -> int:
    """The reference: read the rows verify reads (its cursor and batch size), link-check them and SHA-256 their
    stored bytes (the columns as stored, joined): one hash per entry, no canonical form, no tree."""
    raw = engine.raw_connection()
    count, last = 0, None
    try:
        cursor = open_cursor(raw.dbapi_connection, engine.dialect.name)
        for rows in row_batches(cursor, log_select(engine.dialect.name), (LOG,)):
            last = last or first_link(LOG, rows[0][VERSION])  # the log's genesis, as verify links its first entry
            for values in rows:
                if values[11] != last:
                    raise RuntimeError(f"reference loop: chain broken at {values[0]}")
                hashlib.sha256("\x1f".join(map(str, values[:14])).encode()).hexdigest()
                last = values[14]
                count += 1
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


def _two_workers(engine: Engine, size: int) -> None:
    """Two workers whatever the size and load: where the spawning cost crosses over (--crossover)."""
    threshold, verify.PARALLEL_THRESHOLD = verify.PARALLEL_THRESHOLD, 0
    try:
        _verify(engine, size, 2)
    finally:
        verify.PARALLEL_THRESHOLD = threshold


def measure(engine: Engine, url: str, home: str, size: int, rounds: int, crossover: bool) -> list[Figure]:
    projects = {
        "verify_ledger (as the product calls it)": lambda: _verify(engine, size, None),
        "factory ledger verify --json": lambda: _cli_verify(home, url, size),
    }
    if size >= PARALLEL_THRESHOLD or crossover:  # below it the product runs one process anyway
        projects["verify_ledger, one process"] = lambda: _verify(engine, size, 1)
        projects["verify_ledger, 2 workers (forced)"] = lambda: _two_workers(engine, size)
    return compare("minimal read + link check + SHA-256 loop", lambda: read_and_hash(engine), projects, rounds)


def run(kind: str, sizes: list[int], rounds: int, crossover: bool) -> list[dict[str, object]]:
    results: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="df-bench-") as workdir:
        with _fresh_db(kind, workdir) as url:
            upgrade(url)
            engine = make_engine(url)
            _devices(engine, max(sizes) // PER_DEVICE + 1)
            single_rate = _append_rate(engine, 2000)
            key, seq, now = signing.generate_private_key(), 2000, utc_now()
            with read_scope(engine) as conn:
                edge = frontier(conn, seq, LOG)  # the tree as the real appends left it
                head = conn.exec_driver_sql("SELECT entry_hash FROM custody_entry WHERE log_seq = 2000").scalar_one()
            for size in sorted(sizes):
                t = time.perf_counter()
                head = fill(engine, seq, head, size, edge, now)
                bulk_rate, seq = (size - seq) / (time.perf_counter() - t), size
                with session_scope(engine) as s:
                    sign_tree_head(s, key, LOG, log=LOG)
                proofs = proof_figures(engine, size)
                print(f"{kind}, {size:,} entries ({size // PER_DEVICE:,} devices): append 1/txn with the tree "
                      f"{single_rate:.0f}/s, bulk fill {bulk_rate:.0f}/s; proofs {proofs}", flush=True)  # fmt: skip
                for figure in measure(engine, url, workdir, size, rounds, crossover):
                    results.append({"db": kind, "entries": size, "per_s_best": round(size / min(figure.project)),
                                    "append_1_per_txn_per_s": round(single_rate), "bulk_fill_per_s": round(bulk_rate),
                                    "free_cpus_after": free_cpus(), **proofs,
                                    **figure.as_dict()})  # fmt: skip
            engine.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--db", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds (at least 3)")
    parser.add_argument("--crossover", action="store_true", help="also one process vs 2 forced workers at every size")
    parser.add_argument("--tree-only", type=int, nargs="*", default=[], metavar="LEAVES",
                        help="proof figures on trees of these sizes (nodes only)")  # fmt: skip
    args = parser.parse_args()
    if args.entries and min(args.entries) < 2000:
        raise SystemExit("--entries: at least 2000 (the single-append sample)")
    compile_project()  # factory ledger verify (and its workers) start as on an installed site
    for kind in args.db:
        for row in run(kind, args.entries, args.rounds, args.crossover) if args.entries else []:
            print(json.dumps(row), flush=True)
        for size in args.tree_only:
            print(json.dumps(tree_proofs(kind, size)), flush=True)


if __name__ == "__main__":
    main()
