"""The custody ledger: append-only, hash-chained, one chain for the whole site.

Rows are never updated or deleted (database triggers refuse it; no code path does it).
``prev_hash`` is unique, so two entries can never extend the same parent: the chain cannot fork.
"""

from __future__ import annotations

from sqlmodel import Field, SQLModel

GENESIS_HASH = "0" * 64


class CustodyEntry(SQLModel, table=True):
    __tablename__ = "custody_entry"

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
    # device reference was hashed, 2 = with it. Never lower than the entry before.
    hash_version: int = Field(default=1)
