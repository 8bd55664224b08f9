"""Response models shared by several areas of the JSON API: errors, custody entries, storage
media, certificate summaries and the ledger report."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorBody(BaseModel):
    """An RFC 9457 problem (application/problem+json) with our ``error`` code and ``reason``."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    error: str
    reason: str


class LedgerReportPublic(BaseModel):
    ok: bool
    entries: int
    head_seq: int | None
    head_hash: str | None
    broken_seq: int | None
    reason: str | None
    signed_size: int = 0  # entries covered by the latest signed tree head
    unsigned_tail: int = 0  # entries after it
    heads_checked: int = 0
    root_hash: str | None = None  # the Merkle root over every entry


class CustodyEntryPublic(BaseModel):
    """One entry of the custody ledger (audit's ProvenEntry adds the device and its chain proof)."""

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
    """A sanitisation certificate as a device lists it (audit's HistoryCertificate adds its check)."""

    id: str
    medium_serial: str
    level: str
    method: str
    destination: str
    issued_at: str
    digest_sha256: str
    erase_round_seq: int
