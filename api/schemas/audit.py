"""Response models of the audit API (certificates, device histories, exception reports)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from api.schemas.common import CertificateSummary, CustodyEntryPublic, LedgerReportPublic, MediumPublic
from api.schemas.intake import DeviceStatus
from factory.audit.views import OutOfCustody, Violation
from factory.custody.views import ConsignmentException


class ErasureOutcomePublic(BaseModel):
    outcome: str  # "success" (a certificate) or "failed" (a failed erase round in the ledger)
    at: str
    device_serial: str
    asset_tag: str | None
    medium_serial: str | None
    certificate_id: str | None
    level: str | None
    method: str | None
    destination: str | None
    digest_sha256: str | None
    erase_round_seq: int | None
    custody_seq: int | None
    reason: str | None


class CertificatePage(BaseModel):
    items: list[ErasureOutcomePublic]
    next_cursor: str | None


class CertificateDetail(BaseModel):
    id: str
    device_serial: str
    medium_serial: str
    asset_tag: str | None
    erase_round_seq: int
    level: str
    method: str
    destination: str
    digest_sha256: str
    key_fingerprint: str
    issued_at: str
    envelope: dict[str, Any]  # the signed envelope as stored


class CertificateCheckPublic(BaseModel):
    certificate_id: str
    ok: bool
    signature_ok: bool
    digest_sha256: str | None
    key_fingerprint: str | None
    problems: list[str]


class EntryProofDetail(BaseModel):
    recomputed_hash: str
    hash_ok: bool
    previous_seq: int | None
    previous_entry_hash: str | None
    links_to_previous: bool
    next_seq: int | None
    next_prev_hash: str | None
    linked_by_next: bool | None


class ProvenEntry(CustodyEntryPublic):
    device_serial: str
    proof: EntryProofDetail


class HistoryCertificate(CertificateSummary):
    check: CertificateCheckPublic


class HistoryDevice(DeviceStatus):
    erase_round_seq: int | None


class LedgerStatus(BaseModel):
    head_seq: int | None
    head_hash: str | None
    verified: LedgerReportPublic | None


class DeviceHistoryPublic(BaseModel):
    ok: bool
    device: HistoryDevice
    media: list[MediumPublic]
    certificates: list[HistoryCertificate]
    entries: list[ProvenEntry]
    ledger: LedgerStatus


# The exception report's rows are the audit views' own records: one definition, no copy.
OutOfCustodyPublic = OutOfCustody
ViolationPublic = Violation
ConsignmentExceptionPublic = ConsignmentException  # reference, problem, detail, device_serial


class WaveDevicePublic(BaseModel):
    device_serial: str
    state: str | None
    allocation_status: str
    held_user_data: bool
    certificate_ids: list[str]


class WaveCertificatesPublic(BaseModel):
    wave: str
    cohort: str
    device_count: int
    certificate_count: int
    devices: list[WaveDevicePublic]


class CertificateRowPublic(BaseModel):
    certificate_id: str
    seq: int | None  # the sanitised entry that names it, if any
    reason: str


class ExceptionReportPublic(BaseModel):
    generated_at: str
    days: int
    out_of_custody_total: int
    out_of_custody: list[OutOfCustodyPublic]
    uncertified_departures: list[ViolationPublic]  # must always be empty
    certificates_by_wave: list[WaveCertificatesPublic]
    certificate_rows: list[CertificateRowPublic] = []  # must always be empty: rows the ledger disagrees with
    overdue_days: int  # consignments not delivered within this many days of hand-over are overdue
    consignments: list[ConsignmentExceptionPublic] = []  # overdue, or a device missing a scan
