"""The sanitisation area's own table: signed destruction certificates, one per destroyed medium.

Sanitisation certificates live in the kernel's ``certificate`` table (the lifecycle guard reads
them); a destruction certificate opens no gate, so it is the area's own, append-only like every
evidence table (migration 0016 installs the triggers).
"""

from __future__ import annotations

from sqlmodel import Field, SQLModel


class DestructionCertificate(SQLModel, table=True):
    __tablename__ = "destruction_certificate"

    id: str = Field(primary_key=True, max_length=64)  # certificate id inside the signed document
    device_id: int = Field(foreign_key="device.id", index=True)
    medium_id: int = Field(foreign_key="storage_medium.id", index=True)
    device_serial: str = Field(index=True, max_length=128)
    medium_serial: str = Field(max_length=128)
    destruction_id: int = Field(index=True)  # the witnessed destruction request it certifies
    technique: str = Field(max_length=32)  # IEEE 2883 Destruct technique
    digest_sha256: str = Field(unique=True, max_length=64)
    key_fingerprint: str = Field(max_length=128)
    issued_at: str = Field(index=True, max_length=32)
    envelope: str  # the signed JSON document exactly as issued
