"""Request and response models of the JSON API (one family per resource)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from factory.kernel.models.device import DeviceKind, MediaType


class MediaIn(BaseModel):
    media_type: MediaType
    serial: str = Field(min_length=1, max_length=128)
    capacity_bytes: int = Field(default=0, ge=0, le=2**53)
    model: str = Field(default="", max_length=128)


class DeviceReceive(BaseModel):
    serial: str = Field(min_length=1, max_length=128)
    kind: DeviceKind
    make: str = Field(default="", max_length=128)
    model: str = Field(default="", max_length=128)
    asset_tag: str | None = Field(default=None, min_length=1, max_length=64)
    from_custodian: str = Field(default="", max_length=200)
    location: str = Field(default="", max_length=200)
    new_stock: bool = False
    media: list[MediaIn] = Field(default_factory=list, max_length=16)


class CustodyEntryPublic(BaseModel):
    seq: int
    event: str
    from_state: str | None
    to_state: str
    actor: str
    from_custodian: str
    to_custodian: str
    location: str
    occurred_at: str
    evidence: dict[str, Any]
    prev_hash: str
    entry_hash: str


class MediumPublic(BaseModel):
    serial: str
    model: str
    media_type: str
    capacity_bytes: int


class CertificateSummary(BaseModel):
    id: str
    medium_serial: str
    level: str
    method: str
    destination: str
    issued_at: str
    digest_sha256: str
    erase_round_seq: int


class DevicePublic(BaseModel):
    serial: str
    asset_tag: str | None
    make: str
    model: str
    kind: str
    role: str | None
    state: str | None
    custodian: str
    location: str
    held_user_data: bool
    media: list[MediumPublic]
    certificates: list[CertificateSummary]
    history: list[CustodyEntryPublic]


class LedgerReportPublic(BaseModel):
    ok: bool
    entries: int
    head_seq: int | None
    head_hash: str | None
    broken_seq: int | None
    reason: str | None


class ErrorBody(BaseModel):
    error: str
    reason: str
