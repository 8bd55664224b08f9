"""The custody ledger: append-only and hash-chained, one chain (a *log*) per site.

Rows are never updated or deleted (database triggers refuse it; no code path does it).
``prev_hash`` is unique, so two entries can never extend the same parent: no chain can fork, and
as each log starts from a genesis derived from its name, no two logs share a link either.
``seq`` numbers entries across all logs (a database sequence: sites never wait for each other
to take one); ``log_seq`` is the entry's position in its own log, its chain and Merkle tree.
"""

from __future__ import annotations

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from imaging.offline_verify import LEGACY_GENESIS

GENESIS_HASH = LEGACY_GENESIS  # the first entry of the log that predates per-site logs links here


class CustodyEntry(SQLModel, table=True):
    __tablename__ = "custody_entry"
    __table_args__ = (Index("ux_custody_entry_log_position", "log", "log_seq", unique=True),)

    seq: int = Field(primary_key=True)
    device_id: int = Field(foreign_key="device.id", index=True)
    device_serial: str = Field(max_length=128)
    event: str = Field(max_length=32)
    from_state: str | None = Field(default=None, max_length=32)
    to_state: str = Field(max_length=32)
    actor: str = Field(max_length=128)
    from_custodian: str = Field(default="", max_length=200)
    to_custodian: str = Field(default="", max_length=200)
    location: str = Field(default="", max_length=200)
    occurred_at: str = Field(index=True, max_length=32)
    # Canonical JSON (RFC 8785) of the evidence object: certificate ids, consignment id,
    # document hashes, reason, approver... Hashed as an object, stored as its canonical text.
    evidence: str = Field(default="{}")
    prev_hash: str = Field(unique=True, max_length=64)
    entry_hash: str = Field(unique=True, max_length=64)
    # Which canonical form the hash covers (factory/kernel/ledger/hashing.py): 1 = before the
    # device reference was hashed, 2 = with it, 3 = with the log and position too. Never lower than the entry before.
    hash_version: int = Field(default=1)
    # The log (the site that appended the entry) and the entry's 1-based position in it; both are
    # hashed from version 3 on. Entries from before per-site logs belong to the configured site's log.
    log: str = Field(max_length=128)
    log_seq: int
