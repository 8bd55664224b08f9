"""Signed sanitisation certificates: one per storage medium, built only from a verified erase.

Schema version 2 follows NIST SP 800-88 Rev. 2 (which withdrew Rev. 1 in September 2025): the
IEEE 2883-2022 technique and category of the method, the firmware revision and sanitize
capabilities as probed, each command's raw output and normalised completion status, the
provenance of a cryptographic erase, a ``validation`` block apart from ``verification``, the
reason for sanitisation and the data classification, and the people by name with the bench agent
as the tool. Version 1 certificates keep verifying (``certificate_envelope``). It is signed
detached with Ed25519 over its RFC 8785 canonical bytes and wrapped in an envelope;
``docs/certificate-format.md`` is the published description of both, field by field.

This module builds the document and refuses what cannot be certified; the envelope (canonical
bytes, signing, offline verification, loading) is ``certificate_envelope``, the caller's context
``certificate_context`` and the errors ``certificate_errors``. Every name callers use is
importable from here.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime
from typing import Any

from imaging import certificate_sections as sections
from imaging.certificate_context import (
    CertificateContext,
    DataBackedUp,
    Destination,
    DeviceInfo,
    MediaSource,
    Person,
    document_head,
    enum_value,
    parse_utc,
)
from imaging.certificate_envelope import (
    CERTIFICATE_TYPES,
    ENVELOPE_FORMAT,
    HEX_SHA256,
    MAX_ENVELOPE_BYTES,
    SCHEMA_VERSION,
    SIGNATURE_ALGORITHM,
    SUPPORTED_SCHEMA_VERSIONS,
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
from imaging.result import EraseResult, Level, Technique
from imaging.signing import SignatureInvalidError

__all__ = [
    "CERTIFICATE_TYPES",
    "ENVELOPE_FORMAT",
    "MAX_ENVELOPE_BYTES",
    "SCHEMA_VERSION",
    "SIGNATURE_ALGORITHM",
    "SUPPORTED_SCHEMA_VERSIONS",
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
    """The unsigned certificate document (schema version 2) for one erased, verified and validated medium.

    Raises ``CertificateRefusedError`` for any outcome that is not a verified success, and for
    an incomplete context; ``CertificateContentError`` if the result holds values that canonical
    JSON cannot carry.
    """
    _refuse_unless_certifiable(result)
    _refuse_incomplete_context(context)
    doc: dict[str, Any] = {
        **document_head("sanitisation", context, sections.standards_section(), certificate_id, issued_at),
        "media": sections.media_section(result, context),
        "reason_for_sanitisation": context.reason_for_sanitisation,
        "confidentiality": {
            "pre_sanitisation": context.pre_sanitisation_confidentiality,
            "post_sanitisation": context.post_sanitisation_confidentiality,
        },
        "sanitisation": sections.sanitisation_section(result),
        "verification": sections.verification_section(result),
        "validation": sections.validation_section(result, context),
        "tool": sections.tool_section(result, context),
        "personnel": {
            "sanitised_by": sections.person_section(context.sanitised_by, "sanitised_by"),
            "validated_by": sections.person_section(context.validated_by, "validated_by"),
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


# --- refusal rules ------------------------------------------------------------------------------

_RANK = {Level.CLEAR: 1, Level.PURGE: 2, Level.DESTROY: 3}


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
    if _RANK[result.level_achieved] < _RANK[result.level_requested]:
        raise CertificateRefusedError(
            f"erase achieved {result.level_achieved}, less than the {result.level_requested} requested"
        )
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
        "reason_for_sanitisation": context.reason_for_sanitisation,
        "pre_sanitisation_confidentiality": context.pre_sanitisation_confidentiality,
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
