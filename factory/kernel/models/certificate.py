"""Stored sanitisation certificates: the signed envelope is the evidence, the columns index it."""

from __future__ import annotations

from sqlmodel import Field, SQLModel


class Certificate(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=64)  # certificate id inside the signed document
    device_id: int = Field(foreign_key="device.id", index=True)
    medium_id: int = Field(foreign_key="storage_medium.id", index=True)
    device_serial: str = Field(index=True, max_length=128)
    medium_serial: str = Field(index=True, max_length=128)
    asset_tag: str | None = Field(default=None, index=True, max_length=64)
    # Ledger sequence of the start_sanitise entry of the erase round this certificate closes.
    erase_round_seq: int = Field(index=True)
    level: str = Field(max_length=16)
    method: str = Field(max_length=64)
    destination: str = Field(max_length=32)
    digest_sha256: str = Field(unique=True, max_length=64)
    key_fingerprint: str = Field(max_length=128)
    issued_at: str = Field(index=True, max_length=32)
    envelope: str  # the signed JSON document exactly as issued
