"""Appending to a site's custody log (its chain), and to its Merkle tree in the same transaction.

Writers to one log are serialised so its chain never forks: on PostgreSQL by a transaction-scoped
advisory lock of that log (``logs.lock_log``) taken before reading its head; on SQLite by
``BEGIN IMMEDIATE`` (see db/engine.py). Writers to different logs do not wait for each other: the
global ``seq`` is the database's own (a sequence on PostgreSQL), the chain order is ``log_seq``.
The unique ``prev_hash`` and the unique (``log``, ``log_seq``) are the backstops: a forked append
fails instead of landing. There is deliberately no function that edits or removes an entry.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, TextClause, insert, select, text, update
from sqlalchemy.dialects import postgresql
from sqlmodel import Session

from factory.kernel.clock import utc_now
from factory.kernel.ledger.hashing import entry_bytes, evidence_text
from factory.kernel.ledger.logs import configured_log, genesis_hash, lock_log
from factory.kernel.ledger.tree import NodeRow, leaf_nodes, remember_edge
from factory.kernel.models.certificate import Certificate
from factory.kernel.models.custody_entry import CustodyEntry
from factory.kernel.models.ledger_tree import LedgerNode

# The canonical form new entries are hashed in (hashing.py): version 3 covers the log and position.
APPEND_VERSION = 3


@dataclass(frozen=True)
class SeqStamp:
    """A row that records an entry's ``seq`` (a job step's, a device's erase round), written with
    the entry: in the same statement on PostgreSQL, where the log's lock is held from the append to
    the commit and every round trip under it delays every other writer to the log.

    ``table``'s row ``row_id`` (its ``id``) gets the seq in ``column`` (None: no seq, as for the
    device's own move) and ``values`` beside it.
    """

    table: Table
    row_id: int
    column: str | None
    values: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RowBatch:
    """Rows of another table written with an entry (a job's log lines of the same transaction): in
    the same statement on PostgreSQL, so they cost no round trip of their own. Every row has the
    same keys and names every column without a server default: the statement is sent as is on
    PostgreSQL, so the model's Python-side defaults are not applied."""

    table: Table
    rows: Sequence[Mapping[str, Any]]


def lock_ledger_head(session: Session, log: str | None = None) -> None:
    """Hold the head of ``log`` (default: this site's) until the transaction ends."""
    lock_log(session, log or configured_log())


def append_entry(
    session: Session,
    *,
    device_id: int,
    device_serial: str,
    event: str,
    from_state: str | None,
    to_state: str,
    actor: str,
    from_custodian: str,
    to_custodian: str,
    location: str,
    evidence: dict[str, Any],
    occurred_at: str | None = None,
    log: str | None = None,
    stamps: Sequence[SeqStamp] = (),
    rows: Sequence[RowBatch] = (),
) -> CustodyEntry:
    """Append one entry to ``log`` (default: this site's) inside the caller's transaction and
    return it (flushed, not committed). ``stamps``: rows that record its seq, written with it;
    ``rows``: rows of other tables inserted with it.

    :raises factory.kernel.ledger.hashing.EvidenceError: evidence that is not a JSON object.
    """
    evidence = bind_certificates(session, event, evidence)
    log = log or configured_log()
    text_of_evidence = evidence_text(evidence)  # before the lock: nothing under it that need not be
    lock_log(session, log)
    seq, head_seq, head_hash = session.execute(_seq_and_head(session), {"log": log}).one()
    position, prev = (int(head_seq) + 1, str(head_hash)) if head_seq is not None else (1, genesis_hash(log))
    row: dict[str, Any] = {
        "seq": int(seq),
        "log": log,
        "log_seq": position,
        "device_id": device_id,
        "device_serial": device_serial,
        "event": event,
        "from_state": from_state,
        "to_state": to_state,
        "actor": actor,
        "from_custodian": from_custodian,
        "to_custodian": to_custodian,
        "location": location,
        "occurred_at": occurred_at or utc_now(),
        "evidence": text_of_evidence,
        "prev_hash": prev,
        "hash_version": APPEND_VERSION,
    }
    canonical = entry_bytes(row)
    values = {**row, "entry_hash": hashlib.sha256(canonical).hexdigest()}
    nodes, edge = leaf_nodes(session, position - 1, canonical, log, after=prev)
    _write_append(session, values, nodes, stamps, [batch for batch in rows if batch.rows])
    remember_edge(session, log, canonical, edge)
    return CustodyEntry(**values)


def _write_append(
    session: Session,
    entry: dict[str, Any],
    nodes: list[NodeRow],
    stamps: Sequence[SeqStamp],
    batches: Sequence[RowBatch] = (),
) -> None:
    """Write the entry, its tree nodes, the rows that record its seq and the other rows with it.

    Core statements: the ORM unit of work would cost more than the hashing, and entries are never
    loaded back into this session for change (the returned object is a detached record). On
    PostgreSQL all of them go as one statement (``_one_statement``): one round trip under the log's
    lock instead of two plus one per stamp. SQLite runs in-process and has no data-modifying CTEs.
    """
    updates = _row_updates(stamps, entry["seq"])
    if session.get_bind().dialect.name == "postgresql":
        inserts = tuple((batch.table.name, tuple(batch.rows[0]), len(batch.rows)) for batch in batches)
        shape = (tuple(entry), len(nodes), tuple((table.name, tuple(values)) for (table, _), values in updates.items()))
        params = [*entry.values()]
        params += [value for node in nodes for value in (node["log"], node["level"], node["idx"], node["hash"])]
        params += [value for (_, row_id), values in updates.items() for value in (*values.values(), row_id)]
        params += [row[column] for batch in batches for row in batch.rows for column in batch.rows[0]]
        session.connection().exec_driver_sql(_one_statement(*shape, inserts), tuple(params))
        return
    session.execute(insert(CustodyEntry), [entry])
    session.execute(insert(LedgerNode), nodes)
    for (table, row_id), values in updates.items():
        session.execute(update(table).where(table.c.id == row_id).values(values))
    for batch in batches:
        session.execute(insert(batch.table), list(batch.rows))


def _row_updates(stamps: Sequence[SeqStamp], seq: int) -> dict[tuple[Table, int], dict[str, Any]]:
    """One update per row, whatever number of stamps name it: PostgreSQL applies only one of two
    modifications of the same row in one statement (and which one is not defined)."""
    updates: dict[tuple[Table, int], dict[str, Any]] = {}
    for stamp in stamps:
        values = updates.setdefault((stamp.table, stamp.row_id), {})
        values.update(stamp.values)
        if stamp.column is not None:
            values[stamp.column] = seq
    return updates


@functools.lru_cache(maxsize=256)
def _one_statement(
    entry: tuple[str, ...],
    nodes: int,
    updates: tuple[tuple[str, tuple[str, ...]], ...],
    inserts: tuple[tuple[str, tuple[str, ...], int], ...] = (),
) -> str:
    """The PostgreSQL text that writes an append in one round trip, by shape (its columns, node count,
    stamps and other rows): data-modifying CTEs, each run once and to completion whether or not the
    outer SELECT reads it. Written out and kept per shape: SQLAlchemy does not cache a statement with
    DML in its CTEs, and compiling it each time cost more than the round trip it saves.
    """
    quote = _PG_QUOTE.quote
    parts = [
        f"INSERT INTO custody_entry ({', '.join(map(quote, entry))}) VALUES ({', '.join(['%s'] * len(entry))})",
        "INSERT INTO ledger_node (log, level, idx, hash) VALUES " + ", ".join(["(%s, %s, %s, %s)"] * nodes),
    ]
    parts += [
        f"UPDATE {quote(table)} SET {', '.join(f'{quote(c)} = %s' for c in columns)} WHERE id = %s"
        for table, columns in updates
    ]
    parts += [
        f"INSERT INTO {quote(table)} ({', '.join(map(quote, columns))}) VALUES "
        + ", ".join([f"({', '.join(['%s'] * len(columns))})"] * count)
        for table, columns, count in inserts
    ]
    return "WITH " + ", ".join(f"w{n} AS ({part})" for n, part in enumerate(parts)) + " SELECT 1"


_PG_QUOTE = postgresql.dialect().identifier_preparer


def _seq_and_head(session: Session) -> TextClause:
    """One statement, after the log's lock (its own snapshot then sees the last holder's commit):
    the next global sequence number, and the log's last position and entry hash (NULLs for an
    empty log). One round trip, not two: on PostgreSQL the lock is held across each of them.

    The global ``seq`` is taken before hashing (it is hashed) and never waits on another log.
    PostgreSQL: the column's own sequence (nextval is never rolled back, so an aborted append
    leaves a gap, which verification allows between logs' entries). SQLite: one writer at a time
    holds the database, so the next number after the largest is free.
    """
    return _SEQ_AND_HEAD[session.get_bind().dialect.name == "postgresql"]


_HEAD = "SELECT log_seq, entry_hash FROM custody_entry WHERE log = :log ORDER BY log_seq DESC LIMIT 1"
_SEQ_AND_HEAD = {
    pg: text(
        f"SELECT {next_seq} AS seq, h.log_seq, h.entry_hash"
        f" FROM (SELECT 1 AS one) AS o LEFT JOIN ({_HEAD}) AS h ON 1 = 1"
    )
    for pg, next_seq in (
        (True, "nextval(pg_get_serial_sequence('custody_entry', 'seq'))"),
        (False, "(SELECT coalesce(max(seq), 0) + 1 FROM custody_entry)"),
    )
}


def bind_certificates(session: Session, event: str, evidence: dict[str, Any]) -> dict[str, Any]:
    """A ``sanitised`` entry names each certificate's digest as well as its id.

    Certificate rows sit outside the chain; with their digests inside it, a certificate row
    deleted or swapped later fails ``ledger verify`` (``certificates.check_certificate_rows``).
    """
    ids = evidence.get("certificates")
    if event != "sanitised" or not isinstance(ids, list) or "certificate_digests" in evidence:
        return evidence
    rows = session.execute(
        select(Certificate.id, Certificate.digest_sha256).where(Certificate.id.in_(ids))  # type: ignore[attr-defined]
    ).all()
    digests = {str(cid): str(digest) for cid, digest in rows}
    return {**evidence, "certificate_digests": digests}
