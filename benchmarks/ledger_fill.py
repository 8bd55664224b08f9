"""Bulk fixtures for benchmarks/ledger.py: a production-shaped custody log and its Merkle tree, filled fast.

Not a product path. Rows are chained and hashed as the product hashes them (the version-3 document
of ``verify_rows`` with the evidence's canonical text spliced in; every 997th row is re-derived
through ``hashing.entry_bytes``, the reference path, and the run stops on any difference), their
tree nodes pushed through ``merkle.Frontier``, and written in big transactions: ``executemany`` on
SQLite (its secondary indexes dropped during the fill and rebuilt after it, synchronous off) and
``COPY`` on PostgreSQL. ``tree_only`` writes just the nodes of a tree over synthetic leaves, for
proof figures at sizes whose entries would take too long to fill.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import orjson
from sqlalchemy import Engine

from factory.kernel.ledger import merkle
from factory.kernel.ledger.hashing import entry_bytes, evidence_text
from factory.kernel.ledger.logs import configured_log
from factory.kernel.ledger.verify_rows import DOCUMENTS, ROW_COLUMNS

LOG = configured_log()  # the one log: this site's, where append_entry writes
VERSION = 3  # what append_entry writes since per-site logs: the log and position are hashed

PER_DEVICE = 10
CHUNK = 50_000  # rows per transaction
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
_INSERTED = ROW_COLUMNS  # every column verify reads, entry_hash (index 14) included
_SORTED = orjson.OPT_SORT_KEYS


def evidence(seq: int, step: int) -> dict[str, Any]:
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


def _row(seq: int, prev: str, occurred_at: str) -> tuple[list[Any], bytes]:
    """One entry of ``LOG`` at position ``seq`` in ``_INSERTED`` order (hash unset), and its canonical bytes."""
    device, step = (seq - 1) // PER_DEVICE, (seq - 1) % PER_DEVICE
    event, from_state, to_state, location = LIFE[step]
    ev = evidence(seq, step)
    text = orjson.dumps(ev, option=_SORTED)
    values = [seq, f"BENCH-{device:08d}", event, from_state, to_state, f"tech.{seq % 41}", "factory",
              "factory" if event != "issue" else f"officer-{seq % 5000}", location, occurred_at, text.decode(),
              prev, 1 + device, VERSION, None, LOG, seq]  # fmt: skip
    canonical = orjson.dumps(DOCUMENTS[VERSION](values, orjson.Fragment(text)), option=orjson.OPT_STRICT_INTEGER)
    if seq % 997 == 0:  # the fixture's shortcut against the product's reference path
        reference = dict(zip(_INSERTED, values, strict=True))
        if values[10] != evidence_text(ev) or canonical != entry_bytes(reference):
            raise RuntimeError(f"bulk fill: entry {seq} differs from the reference canonical form")
    return values, canonical


def rows(seq: int, prev: str, size: int, edge: merkle.Frontier, occurred_at: str) -> Iterator[tuple[list, list]]:
    """Chunks of (entry rows, node rows) for entries ``seq + 1 .. size`` after ``prev``, pushing ``edge``."""
    while seq < size:
        entries, nodes = [], []
        for _ in range(min(CHUNK, size - seq)):
            seq += 1
            values, canonical = _row(seq, prev, occurred_at)
            values[14] = prev = hashlib.sha256(canonical).hexdigest()
            entries.append(values)
            nodes += [(LOG, *made) for made in edge.push(hashlib.sha256(b"\x00" + canonical).digest())]
        yield entries, nodes


def fill(engine: Engine, seq: int, prev: str, size: int, edge: merkle.Frontier, occurred_at: str) -> str:
    """Append entries up to ``size`` (and their tree nodes) in bulk; returns the last entry's hash."""
    chunks = rows(seq, prev, size, edge, occurred_at)
    raw = engine.raw_connection()
    try:
        if engine.dialect.name == "sqlite":
            _fill_sqlite(raw, chunks)
        else:
            _fill_postgresql(raw, chunks)
    finally:
        raw.close()
    return _last_hash(engine)


def _last_hash(engine: Engine) -> str:
    with engine.connect() as conn:
        last = "SELECT entry_hash FROM custody_entry WHERE log = ? ORDER BY log_seq DESC LIMIT 1"
        mark = "?" if engine.dialect.name == "sqlite" else "%s"
        return str(conn.exec_driver_sql(last.replace("?", mark), (LOG,)).scalar_one())


def _fill_sqlite(raw: Any, chunks: Iterator[tuple[list, list]]) -> None:
    cur = raw.cursor()
    indexes = cur.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'custody_entry' AND sql IS NOT NULL"
    ).fetchall()
    _fast_sqlite(cur)
    for name, _ in indexes:
        cur.execute(f"DROP INDEX {name}")
    entry_sql = f"INSERT INTO custody_entry ({', '.join(_INSERTED)}) VALUES ({', '.join('?' * len(_INSERTED))})"
    for entries, nodes in chunks:
        cur.executemany(entry_sql, entries)
        cur.executemany("INSERT INTO ledger_node (log, level, idx, hash) VALUES (?, ?, ?, ?)", nodes)
        raw.commit()
    for _, sql in indexes:
        cur.execute(sql)
    cur.execute("PRAGMA synchronous = FULL")
    raw.commit()


def _fast_sqlite(cur: Any) -> None:
    """A fixture's settings: no fsync per commit, a big page cache (the index B-trees stay in memory)."""
    cur.execute("PRAGMA synchronous = OFF")
    cur.execute("PRAGMA cache_size = -262144")  # KiB


def _fill_postgresql(raw: Any, chunks: Iterator[tuple[list, list]]) -> None:
    cur = raw.cursor()
    for entries, nodes in chunks:
        with cur.copy(f"COPY custody_entry ({', '.join(_INSERTED)}) FROM STDIN") as copy:
            for entry in entries:
                copy.write_row(entry)
        with cur.copy("COPY ledger_node (log, level, idx, hash) FROM STDIN") as copy:
            for node in nodes:
                copy.write_row(node)
        raw.commit()
    cur.execute("ANALYZE custody_entry")
    raw.commit()


def tree_only(engine: Engine, size: int) -> bytes:
    """Write the nodes of a tree over ``size`` synthetic leaves (no entries); returns its root."""
    edge = merkle.Frontier()
    raw = engine.raw_connection()
    mark = "?" if engine.dialect.name == "sqlite" else "%s"
    try:
        cur = raw.cursor()
        if engine.dialect.name == "sqlite":
            _fast_sqlite(cur)
        for lo in range(0, size, CHUNK):
            nodes: list[Sequence[Any]] = []
            for i in range(lo, min(size, lo + CHUNK)):
                leaf = hashlib.sha256(b"\x00" + i.to_bytes(8, "big")).digest()
                nodes += [(LOG, *made) for made in edge.push(leaf)]
            cur.executemany(
                f"INSERT INTO ledger_node (log, level, idx, hash) VALUES ({mark}, {mark}, {mark}, {mark})", nodes
            )
            raw.commit()
    finally:
        raw.close()
    return edge.root()
