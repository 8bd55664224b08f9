"""Appending to a site's custody log (its chain), and to its Merkle tree in the same transaction.

Writers to one log are serialised so its chain never forks: on PostgreSQL by a transaction-scoped
advisory lock of that log (``logs.lock_log``) taken before reading its head; on SQLite by
``BEGIN IMMEDIATE`` (see db/engine.py). Writers to different logs do not wait for each other: the
global ``seq`` is the database's own (a sequence on PostgreSQL), the chain order is ``log_seq``.
The unique ``prev_hash`` and the unique (``log``, ``log_seq``) are the backstops: a forked append
fails instead of landing. There is deliberately no function that edits or removes an entry.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import TextClause, insert, select, text
from sqlmodel import Session

from factory.kernel.clock import utc_now
from factory.kernel.ledger.hashing import entry_bytes, evidence_text
from factory.kernel.ledger.logs import configured_log, genesis_hash, lock_log
from factory.kernel.ledger.tree import add_leaf
from factory.kernel.models.certificate import Certificate
from factory.kernel.models.custody_entry import CustodyEntry

# The canonical form new entries are hashed in (hashing.py): version 3 covers the log and position.
APPEND_VERSION = 3


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
) -> CustodyEntry:
    """Append one entry to ``log`` (default: this site's) inside the caller's transaction and
    return it (flushed, not committed).

    :raises factory.kernel.ledger.hashing.EvidenceError: evidence that is not a JSON object.
    """
    evidence = bind_certificates(session, event, evidence)
    log = log or configured_log()
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
        "evidence": evidence_text(evidence),
        "prev_hash": prev,
        "hash_version": APPEND_VERSION,
    }
    canonical = entry_bytes(row)
    values = {**row, "entry_hash": hashlib.sha256(canonical).hexdigest()}
    # A Core INSERT: the ORM unit of work would cost more than the hashing, and entries are never
    # loaded back into this session for change (the returned object is a detached record).
    session.execute(insert(CustodyEntry), [values])
    add_leaf(session, position - 1, canonical, log, after=prev)
    return CustodyEntry(**values)


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
