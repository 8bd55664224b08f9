"""Typed outcomes of probing, erasing and verifying one storage medium.

These are the only objects the engine hands to the outside world; certificates are built from a
successful ``EraseResult`` and nothing else (a failed one has no path to a certificate).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Level(StrEnum):
    """NIST SP 800-88 sanitisation categories."""

    CLEAR = "clear"
    PURGE = "purge"
    DESTROY = "destroy"


class Technique(StrEnum):
    """NIST SP 800-88 method names as they appear on a certificate."""

    OVERWRITE = "overwrite"
    BLOCK_ERASE = "block erase"
    CRYPTO_ERASE = "crypto erase"


class VerifyMode(StrEnum):
    FULL = "full"
    SAMPLE = "sample"


@dataclass(frozen=True)
class MediaIdentity:
    """What a certificate needs to name the medium it speaks for."""

    path: str
    target_kind: str  # "block" or "file"
    media_type: str  # hdd, sata-ssd, nvme, emmc, ufs, usb, sd, file
    size_bytes: int
    logical_sector_size: int
    physical_sector_size: int
    model: str | None = None
    serial: str | None = None
    manufacturer: str | None = None
    transport: str | None = None
    rotational: bool | None = None


@dataclass(frozen=True)
class CommandRecord:
    """One external command issued through the command seam, with its raw status."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    started_at: str  # UTC ISO 8601
    ended_at: str


@dataclass(frozen=True)
class HiddenAreaStatus:
    """HPA/DCO state before and after the erase (None fields: not applicable or not reported)."""

    hpa_present_before: bool | None = None
    hpa_present_after: bool | None = None
    dco_present: bool | None = None
    native_max_sectors: int | None = None
    note: str = ""


@dataclass(frozen=True)
class VerificationResult:
    mode: VerifyMode
    expected_pattern: str  # zeros, ones, random, vendor-zeros, ...
    seed_hex: str | None  # seed of the sample locations (sample mode) or of the random pattern
    bytes_read: int
    coverage: float  # fraction of the addressable bytes read back, 0..1
    subsections: int
    locations: int
    mismatches: int
    first_mismatch_offset: int | None = None
    passed: bool = False


@dataclass(frozen=True)
class EraseResult:
    """Outcome of one erase of one medium. ``ok`` is True only when erased AND verified."""

    ok: bool
    media: MediaIdentity
    level_requested: Level
    level_achieved: Level | None
    method: str  # method module name: overwrite-zeros, nvme-sanitize-crypto, ata-secure-erase-enhanced, ...
    technique: Technique
    pattern: str | None
    pattern_seed_hex: str | None
    passes: int
    bytes_written: int
    first_lba: int
    last_lba: int
    started_at: str
    ended_at: str
    commands: tuple[CommandRecord, ...] = ()
    hidden_areas: HiddenAreaStatus = field(default_factory=HiddenAreaStatus)
    verification: VerificationResult | None = None
    failure_reason: str | None = None
    failure_offset: int | None = None
    tool_name: str = "device-factory-imaging"
    tool_version: str = ""
    tool_code_sha256: str = ""
    residual_risk: tuple[str, ...] = ()
    io_mode: str | None = None  # "direct" (O_DIRECT) or "buffered+fdatasync" (filesystem refused O_DIRECT)
    notes: tuple[str, ...] = ()  # planner and firmware remarks (methods skipped and why, status lines)
    firmware_revision: str | None = None  # as the medium reported it when probed (NVMe/ATA identify)
    sanitize_capabilities: tuple[str, ...] = ()  # firmware sanitisation commands advertised when probed


@dataclass(kw_only=True)
class FirstFailure:
    """What went wrong in a run (an erase, a deploy): the first failure reported is the cause,
    later ones are its effects, so only the first is kept."""

    failure_reason: str | None = None
    failure_offset: int | None = None

    def fail(self, reason: str, offset: int | None = None) -> None:
        if self.failure_reason is None:
            self.failure_reason = reason
            self.failure_offset = offset
