"""Appending to the one site-wide chain, and to its Merkle tree in the same transaction.

Writers are serialised so the chain never forks: on PostgreSQL by a transaction-scoped advisory
lock taken before reading the head; on SQLite by ``BEGIN IMMEDIATE`` (see db/engine.py). The
unique constraint on ``prev_hash`` is the backstop: a forked append fails instead of landing.
There is deliberately no function that edits or removes an entry.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import insert, select, text
from sqlmodel import Session

from factory.kernel.clock import utc_now
from factory.kernel.ledger.hashing import CURRENT_VERSION, entry_bytes, evidence_text
from factory.kernel.ledger.tree import add_leaf
from factory.kernel.models.certificate import Certificate
from factory.kernel.models.custody_entry import GENESIS_HASH, CustodyEntry

# Arbitrary but fixed: the advisory-lock key that guards the ledger head on PostgreSQL.
LEDGER_LOCK_KEY = 0x44464C47  # "DFLG"


def lock_ledger_head(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LEDGER_LOCK_KEY})


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
) -> CustodyEntry:
    """Append one entry inside the caller's transaction and return it (flushed, not committed).

    :raises factory.kernel.ledger.hashing.EvidenceError: evidence that is not a JSON object.
    """
    evidence = bind_certificates(session, event, evidence)
    lock_ledger_head(session)
    head = session.execute(text("SELECT seq, entry_hash FROM custody_entry ORDER BY seq DESC LIMIT 1")).first()
    seq, prev = (head[0] + 1, head[1]) if head else (1, GENESIS_HASH)
    row: dict[str, Any] = {
        "seq": seq,
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
        "hash_version": CURRENT_VERSION,
    }
    canonical = entry_bytes(row)
    values = {**row, "entry_hash": hashlib.sha256(canonical).hexdigest()}
    # A Core INSERT: the ORM unit of work would cost more than the hashing, and entries are never
    # loaded back into this session for change (the returned object is a detached record).
    session.execute(insert(CustodyEntry), [values])
    add_leaf(session, seq - 1, canonical)
    return CustodyEntry(**values)


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
