"""Signed sanitisation certificates: one per storage medium, built only from a verified erase.

The document carries every field of the NIST SP 800-88 Rev. 1 certificate (section 4.8 /
Appendix G) plus the engine's evidence (commands with raw status, block range, hidden areas,
verification). It is signed detached with Ed25519 over its RFC 8785 canonical bytes and wrapped
in an envelope; ``docs/certificate-format.md`` is the published description of both.

This module builds the document and refuses what cannot be certified; the envelope (canonical
bytes, signing, offline verification, loading) is ``certificate_envelope``, the caller's context
``certificate_context`` and the errors ``certificate_errors``. Every name callers use is
importable from here.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime
from typing import Any

from imaging.certificate_context import (
    CertificateContext,
    DataBackedUp,
    Destination,
    DeviceInfo,
    MediaSource,
    Person,
    enum_value,
    normalised_utc,
    parse_utc,
    utc_iso,
)
from imaging.certificate_envelope import (
    ENVELOPE_FORMAT,
    HEX_SHA256,
    MAX_ENVELOPE_BYTES,
    SCHEMA_VERSION,
    SIGNATURE_ALGORITHM,
    VerifiedCertificate,
    canonical_bytes,
    document_field,
    dumps_envelope,
    load_envelope,
    sign_certificate,
    verify_certificate,
)
from imaging.certificate_errors import (
    CertificateContentError,
    CertificateError,
    CertificateRefusedError,
    DigestMismatchError,
    EnvelopeLoadError,
    KeyMismatchError,
    MalformedEnvelopeError,
    UnsupportedEnvelopeError,
)
from imaging.result import EraseResult, Technique
from imaging.signing import SignatureInvalidError

__all__ = [
    "ENVELOPE_FORMAT",
    "MAX_ENVELOPE_BYTES",
    "SCHEMA_VERSION",
    "SIGNATURE_ALGORITHM",
    "CertificateContentError",
    "CertificateContext",
    "CertificateError",
    "CertificateRefusedError",
    "DataBackedUp",
    "Destination",
    "DeviceInfo",
    "DigestMismatchError",
    "EnvelopeLoadError",
    "KeyMismatchError",
    "MalformedEnvelopeError",
    "MediaSource",
    "Person",
    "SignatureInvalidError",
    "UnsupportedEnvelopeError",
    "VerifiedCertificate",
    "build_certificate",
    "canonical_bytes",
    "document_field",
    "dumps_envelope",
    "load_envelope",
    "sign_certificate",
    "verify_certificate",
]


def build_certificate(
    result: EraseResult,
    context: CertificateContext,
    *,
    certificate_id: uuid.UUID | None = None,
    issued_at: datetime | None = None,
) -> dict[str, Any]:
    """The unsigned certificate document for one successfully erased and verified medium.

    Raises ``CertificateRefusedError`` for any outcome that is not a verified success, and for
    an incomplete context; ``CertificateContentError`` if the result holds values that canonical
    JSON cannot carry.
    """
    _refuse_unless_certifiable(result)
    _refuse_incomplete_context(context)
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "certificate_id": str(certificate_id or uuid.uuid4()),
        "issued_at": utc_iso(issued_at or datetime.now(UTC), "issued_at"),
        "organisation": {"name": context.organisation, "site": context.site},
        "device": {
            "manufacturer": context.device.manufacturer,
            "model": context.device.model,
            "serial_number": context.device.serial_number,
            "asset_tag": context.device.asset_tag,
            "kind": context.device.kind,
        },
        "media": _media_section(result, context),
        "confidentiality": {
            "pre_sanitisation": context.pre_sanitisation_confidentiality,
            "post_sanitisation": context.post_sanitisation_confidentiality,
        },
        "sanitisation": _sanitisation_section(result),
        "verification": _verification_section(result),
        "tool": {"name": result.tool_name, "version": result.tool_version, "code_sha256": result.tool_code_sha256},
        "personnel": {
            "sanitised_by": _person(context.sanitised_by, "sanitised_by"),
            "validated_by": _person(context.validated_by, "validated_by"),
        },
        "destination": {
            "category": enum_value(Destination, context.destination),
            "detail": context.destination_detail,
        },
        "data_backed_up": enum_value(DataBackedUp, context.data_backed_up),
        "residual_risk": list(result.residual_risk),
        "custody": {
            "previous_entry_sha256": context.custody_previous_entry_sha256,
            "sequence": context.custody_sequence,
        },
    }
    canonical_bytes(doc)  # fail now, not at signing time, on values JCS cannot carry
    return doc


# --- sections of the document -------------------------------------------------------------------


def _media_section(result: EraseResult, context: CertificateContext) -> dict[str, Any]:
    media = result.media
    return {
        "manufacturer": media.manufacturer,
        "model": media.model,
        "serial_number": media.serial,
        "media_type": media.media_type,
        "source": enum_value(MediaSource, context.media_source),
        "transport": media.transport,
        "rotational": media.rotational,
        "size_bytes": media.size_bytes,
        "logical_sector_size": media.logical_sector_size,
        "physical_sector_size": media.physical_sector_size,
        "path": media.path,
        "target_kind": media.target_kind,
    }


def _sanitisation_section(result: EraseResult) -> dict[str, Any]:
    assert result.level_achieved is not None  # refused earlier otherwise
    hidden = result.hidden_areas
    return {
        "level_requested": result.level_requested.value,
        "level_achieved": result.level_achieved.value,
        "method": result.method,
        "technique": result.technique.value,
        "pattern": result.pattern,
        "pattern_seed_hex": result.pattern_seed_hex,
        "passes": result.passes,
        "started_at": normalised_utc(result.started_at, "started_at"),
        "ended_at": normalised_utc(result.ended_at, "ended_at"),
        "bytes_written": result.bytes_written,
        "block_range": {
            "first_lba": result.first_lba,
            "last_lba": result.last_lba,
            "sector_size": result.media.logical_sector_size,
        },
        "hidden_areas": {
            "hpa_present_before": hidden.hpa_present_before,
            "hpa_present_after": hidden.hpa_present_after,
            "dco_present": hidden.dco_present,
            "native_max_sectors": hidden.native_max_sectors,
            "note": hidden.note,
        },
        "commands": [
            {
                "argv": list(cmd.argv),
                "returncode": cmd.returncode,
                "stdout": cmd.stdout,
                "stderr": cmd.stderr,
                "started_at": normalised_utc(cmd.started_at, "command started_at"),
                "ended_at": normalised_utc(cmd.ended_at, "command ended_at"),
            }
            for cmd in result.commands
        ],
    }


def _verification_section(result: EraseResult) -> dict[str, Any]:
    verification = result.verification
    assert verification is not None  # refused earlier otherwise
    return {
        "mode": verification.mode.value,
        "expected_pattern": verification.expected_pattern,
        "seed_hex": verification.seed_hex,
        "bytes_read": verification.bytes_read,
        "coverage": verification.coverage,
        "subsections": verification.subsections,
        "locations": verification.locations,
        "mismatches": verification.mismatches,
        "first_mismatch_offset": verification.first_mismatch_offset,
        "passed": verification.passed,
    }


def _person(person: Person, role: str) -> dict[str, Any]:
    return {
        "name": person.name,
        "title": person.title,
        "organisation": person.organisation,
        "location": person.location,
        "contact": person.contact,
        "date": utc_iso(person.date, f"{role}.date"),
    }


# --- refusal rules ------------------------------------------------------------------------------


def _refuse_unless_certifiable(result: EraseResult) -> None:
    if not result.ok:
        raise CertificateRefusedError(f"erase result is not ok: {result.failure_reason or 'no failure reason given'}")
    if result.failure_reason is not None:
        raise CertificateRefusedError(f"erase result is ok but reports a failure: {result.failure_reason}")
    verification = result.verification
    if verification is None:
        raise CertificateRefusedError("erase result has no verification: an unverified erase is uncertifiable")
    if not verification.passed:
        raise CertificateRefusedError(f"verification did not pass ({verification.mismatches} mismatches)")
    if verification.mismatches != 0:
        raise CertificateRefusedError(f"verification is marked passed but found {verification.mismatches} mismatches")
    if not (math.isfinite(verification.coverage) and 0.0 < verification.coverage <= 1.0):
        raise CertificateRefusedError(f"verification coverage {verification.coverage!r} is not in (0, 1]")
    if result.level_achieved is None:
        raise CertificateRefusedError("erase result achieved no sanitisation level")
    if result.technique is Technique.OVERWRITE and result.bytes_written <= 0:
        raise CertificateRefusedError("overwrite reports success but wrote no bytes")
    if result.first_lba < 0 or result.last_lba < result.first_lba:
        raise CertificateRefusedError(f"invalid block range {result.first_lba}..{result.last_lba}")
    started = parse_utc(result.started_at, "started_at")
    ended = parse_utc(result.ended_at, "ended_at")
    if ended < started:
        raise CertificateRefusedError("erase result ended before it started")
    for index, command in enumerate(result.commands):
        parse_utc(command.started_at, f"commands[{index}].started_at")
        parse_utc(command.ended_at, f"commands[{index}].ended_at")


def _refuse_incomplete_context(context: CertificateContext) -> None:
    required = {
        "organisation": context.organisation,
        "site": context.site,
        "device.manufacturer": context.device.manufacturer,
        "device.model": context.device.model,
        "device.serial_number": context.device.serial_number,
        "device.kind": context.device.kind,
    }
    for role in ("sanitised_by", "validated_by"):
        person: Person = getattr(context, role)
        for attr in ("name", "title", "organisation", "location", "contact"):
            required[f"{role}.{attr}"] = getattr(person, attr)
    for name, value in required.items():
        if not isinstance(value, str) or not value.strip():
            raise CertificateRefusedError(f"context field {name} is empty")
    destination = enum_value(Destination, context.destination)
    enum_value(MediaSource, context.media_source)
    enum_value(DataBackedUp, context.data_backed_up)
    if destination == Destination.OTHER and not (context.destination_detail or "").strip():
        raise CertificateRefusedError("destination 'other' needs destination_detail")
    digest = context.custody_previous_entry_sha256
    if digest is not None and not HEX_SHA256.fullmatch(digest):
        raise CertificateRefusedError("custody_previous_entry_sha256 is not 64 lowercase hex digits")
    if context.custody_sequence is not None and context.custody_sequence < 0:
        raise CertificateRefusedError("custody_sequence is negative")
