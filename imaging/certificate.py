"""Signed sanitisation certificates: one per storage medium, built only from a verified erase.

The document carries every field of the NIST SP 800-88 Rev. 1 certificate (section 4.8 /
Appendix G) plus the engine's evidence (commands with raw status, block range, hidden areas,
verification). It is signed detached with Ed25519 over its RFC 8785 canonical bytes and wrapped
in an envelope; ``docs/certificate-format.md`` is the published description of both.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
import json
import math
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from imaging import signing
from imaging.result import EraseResult, Technique

ENVELOPE_FORMAT = "device-factory-certificate"
SCHEMA_VERSION = 1
SIGNATURE_ALGORITHM = "Ed25519"
MAX_ENVELOPE_BYTES = 64 * 1024 * 1024  # a certificate with full command output stays far below this

_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")
_ENVELOPE_FIELDS = ("format", "schema_version", "certificate", "signature")
_SIGNATURE_FIELDS = ("algorithm", "key_fingerprint", "digest_sha256", "value")


class CertificateError(Exception):
    """Base of every certificate error; ``str(err)`` is a one-line reason."""


class CertificateRefusedError(CertificateError):
    """The erase outcome (or its context) cannot be certified."""


class CertificateContentError(CertificateError):
    """The certificate document cannot be canonicalised (e.g. non-finite float, huge integer)."""


class EnvelopeLoadError(CertificateError):
    """An envelope file that cannot be read or is not a JSON object."""


class MalformedEnvelopeError(CertificateError):
    """A field of the envelope is missing, extra or of the wrong type or shape."""


class UnsupportedEnvelopeError(CertificateError):
    """Unknown format name, schema version or signature algorithm."""


class KeyMismatchError(CertificateError):
    """The envelope names a different signing key from the one given to verify it."""


class DigestMismatchError(CertificateError):
    """The certificate's canonical bytes no longer hash to the recorded digest."""


class SignatureInvalidError(CertificateError):
    """The Ed25519 signature does not verify under the given key."""


class MediaSource(StrEnum):
    """Whose medium it is (NIST form: "media source")."""

    USER = "user"
    HOST = "host"


class Destination(StrEnum):
    INTERNAL_REUSE = "internal_reuse"
    EXTERNAL_REUSE = "external_reuse"
    RECYCLING = "recycling"
    MANUFACTURER = "manufacturer"
    OTHER = "other"


class DataBackedUp(StrEnum):
    YES = "yes"
    NO = "no"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Person:
    """Someone who sanitised or validated. Their signature is the site key's, their identity is here."""

    name: str
    title: str
    organisation: str
    location: str
    contact: str
    date: datetime  # timezone-aware; recorded in UTC


@dataclass(frozen=True)
class DeviceInfo:
    """The host device the medium came from (the laptop or tablet, not the disk)."""

    manufacturer: str
    model: str
    serial_number: str
    kind: str  # laptop, tablet, phone, desktop, loose-media, ...
    asset_tag: str | None = None  # organisation's property number


@dataclass(frozen=True)
class CertificateContext:
    """What the certificate needs that the erase engine cannot know."""

    organisation: str
    site: str
    device: DeviceInfo
    media_source: MediaSource
    destination: Destination
    data_backed_up: DataBackedUp
    sanitised_by: Person
    validated_by: Person
    destination_detail: str | None = None  # required when destination is OTHER
    pre_sanitisation_confidentiality: str | None = None
    post_sanitisation_confidentiality: str | None = None
    custody_previous_entry_sha256: str | None = None  # hex SHA-256 of the ledger entry this extends
    custody_sequence: int | None = None


@dataclass(frozen=True)
class VerifiedCertificate:
    """A certificate whose digest and signature checked out under ``key_fingerprint``."""

    certificate_id: str
    key_fingerprint: str
    digest_sha256: str
    certificate: Mapping[str, Any]


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
    verification = result.verification
    assert verification is not None and result.level_achieved is not None  # checked above
    media = result.media
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "certificate_id": str(certificate_id or uuid.uuid4()),
        "issued_at": _utc_iso(issued_at or datetime.now(UTC), "issued_at"),
        "organisation": {"name": context.organisation, "site": context.site},
        "device": {
            "manufacturer": context.device.manufacturer,
            "model": context.device.model,
            "serial_number": context.device.serial_number,
            "asset_tag": context.device.asset_tag,
            "kind": context.device.kind,
        },
        "media": {
            "manufacturer": media.manufacturer,
            "model": media.model,
            "serial_number": media.serial,
            "media_type": media.media_type,
            "source": _enum_value(MediaSource, context.media_source),
            "transport": media.transport,
            "rotational": media.rotational,
            "size_bytes": media.size_bytes,
            "logical_sector_size": media.logical_sector_size,
            "physical_sector_size": media.physical_sector_size,
            "path": media.path,
            "target_kind": media.target_kind,
        },
        "confidentiality": {
            "pre_sanitisation": context.pre_sanitisation_confidentiality,
            "post_sanitisation": context.post_sanitisation_confidentiality,
        },
        "sanitisation": {
            "level_requested": result.level_requested.value,
            "level_achieved": result.level_achieved.value,
            "method": result.method,
            "technique": result.technique.value,
            "pattern": result.pattern,
            "pattern_seed_hex": result.pattern_seed_hex,
            "passes": result.passes,
            "started_at": _normalised_utc(result.started_at, "started_at"),
            "ended_at": _normalised_utc(result.ended_at, "ended_at"),
            "bytes_written": result.bytes_written,
            "block_range": {
                "first_lba": result.first_lba,
                "last_lba": result.last_lba,
                "sector_size": media.logical_sector_size,
            },
            "hidden_areas": {
                "hpa_present_before": result.hidden_areas.hpa_present_before,
                "hpa_present_after": result.hidden_areas.hpa_present_after,
                "dco_present": result.hidden_areas.dco_present,
                "native_max_sectors": result.hidden_areas.native_max_sectors,
                "note": result.hidden_areas.note,
            },
            "commands": [
                {
                    "argv": list(cmd.argv),
                    "returncode": cmd.returncode,
                    "stdout": cmd.stdout,
                    "stderr": cmd.stderr,
                    "started_at": _normalised_utc(cmd.started_at, "command started_at"),
                    "ended_at": _normalised_utc(cmd.ended_at, "command ended_at"),
                }
                for cmd in result.commands
            ],
        },
        "verification": {
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
        },
        "tool": {
            "name": result.tool_name,
            "version": result.tool_version,
            "code_sha256": result.tool_code_sha256,
        },
        "personnel": {
            "sanitised_by": _person(context.sanitised_by, "sanitised_by"),
            "validated_by": _person(context.validated_by, "validated_by"),
        },
        "destination": {
            "category": _enum_value(Destination, context.destination),
            "detail": context.destination_detail,
        },
        "data_backed_up": _enum_value(DataBackedUp, context.data_backed_up),
        "residual_risk": list(result.residual_risk),
        "custody": {
            "previous_entry_sha256": context.custody_previous_entry_sha256,
            "sequence": context.custody_sequence,
        },
    }
    canonical_bytes(doc)  # fail now, not at signing time, on values JCS cannot carry
    return doc


def canonical_bytes(certificate: Mapping[str, Any]) -> bytes:
    """RFC 8785 (JCS) canonical UTF-8 bytes: what the digest and the signature cover."""
    try:
        return rfc8785.dumps(certificate)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise CertificateContentError(f"certificate is not canonical-JSON encodable: {exc}") from exc


def sign_certificate(doc: Mapping[str, Any], private_key: Ed25519PrivateKey) -> dict[str, Any]:
    """Wrap ``doc`` in a signed envelope (the document itself is copied, not changed)."""
    payload = canonical_bytes(doc)
    signature = signing.sign(private_key, payload)
    return {
        "format": ENVELOPE_FORMAT,
        "schema_version": SCHEMA_VERSION,
        "certificate": copy.deepcopy(dict(doc)),
        "signature": {
            "algorithm": SIGNATURE_ALGORITHM,
            "key_fingerprint": signing.key_fingerprint(private_key.public_key()),
            "digest_sha256": hashlib.sha256(payload).hexdigest(),
            "value": base64.b64encode(signature).decode("ascii"),
        },
    }


def verify_certificate(envelope: Mapping[str, Any], public_key: Ed25519PublicKey) -> VerifiedCertificate:
    """Check an envelope offline against the site's public key; raise a ``CertificateError`` if not.

    Order: shape, format and versions, key fingerprint, digest, signature, then the signed
    content's own version and id, so a changed certificate reports "digest mismatch".
    """
    if not isinstance(envelope, Mapping):
        raise MalformedEnvelopeError("malformed envelope: not a JSON object")
    _require_exact_fields(envelope, _ENVELOPE_FIELDS, prefix="")
    certificate = envelope["certificate"]
    signature = envelope["signature"]
    if not isinstance(certificate, Mapping):
        raise MalformedEnvelopeError("malformed envelope: field 'certificate' is not an object")
    if not isinstance(signature, Mapping):
        raise MalformedEnvelopeError("malformed envelope: field 'signature' is not an object")
    _require_exact_fields(signature, _SIGNATURE_FIELDS, prefix="signature.")
    _require_type(envelope["format"], str, "format")
    _require_type(envelope["schema_version"], int, "schema_version")
    for name in _SIGNATURE_FIELDS:
        _require_type(signature[name], str, f"signature.{name}")

    if envelope["format"] != ENVELOPE_FORMAT:
        raise UnsupportedEnvelopeError(f"unsupported format {envelope['format']!r}")
    if envelope["schema_version"] != SCHEMA_VERSION:
        raise UnsupportedEnvelopeError(f"unsupported schema version {envelope['schema_version']}")
    if signature["algorithm"] != SIGNATURE_ALGORITHM:
        raise UnsupportedEnvelopeError(f"unsupported signature algorithm {signature['algorithm']!r}")

    expected_fingerprint = signing.key_fingerprint(public_key)
    if signature["key_fingerprint"] != expected_fingerprint:
        raise KeyMismatchError(
            f"key fingerprint mismatch: signed by {signature['key_fingerprint']!r},"  # repr: stays one line
            f" verifying with {expected_fingerprint}"
        )

    recorded_digest = signature["digest_sha256"]
    if not _HEX_SHA256.fullmatch(recorded_digest):
        raise MalformedEnvelopeError("malformed envelope: 'signature.digest_sha256' is not 64 lowercase hex digits")
    try:
        payload = canonical_bytes(certificate)
    except CertificateContentError as exc:
        raise MalformedEnvelopeError(f"malformed envelope: {exc}") from exc
    actual_digest = hashlib.sha256(payload).hexdigest()
    if not hmac.compare_digest(actual_digest, recorded_digest):
        raise DigestMismatchError("digest mismatch: certificate content changed")

    signature_bytes = _strict_b64decode(signature["value"])
    try:
        signing.verify(public_key, payload, signature_bytes)
    except signing.SignatureInvalidError as exc:
        raise SignatureInvalidError(f"signature invalid for key {expected_fingerprint}") from exc

    if certificate.get("schema_version") != envelope["schema_version"]:
        raise MalformedEnvelopeError("malformed envelope: certificate schema_version differs from the envelope's")
    certificate_id = certificate.get("certificate_id")
    if not isinstance(certificate_id, str) or not _is_uuid(certificate_id):
        raise MalformedEnvelopeError("malformed envelope: 'certificate.certificate_id' is not a UUID")
    return VerifiedCertificate(
        certificate_id=certificate_id,
        key_fingerprint=expected_fingerprint,
        digest_sha256=actual_digest,
        certificate=copy.deepcopy(dict(certificate)),
    )


def dumps_envelope(envelope: Mapping[str, Any]) -> bytes:
    """Human-readable UTF-8 JSON for storage; verification never depends on this layout."""
    return (json.dumps(envelope, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def load_envelope(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read an envelope file (not yet verified): typed errors for unreadable or non-JSON files."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_ENVELOPE_BYTES + 1)
    except OSError as exc:
        raise EnvelopeLoadError(f"cannot read {os.fspath(path)}: {exc.strerror or exc}") from exc
    if len(raw) > MAX_ENVELOPE_BYTES:
        raise EnvelopeLoadError(f"{os.fspath(path)} is larger than {MAX_ENVELOPE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EnvelopeLoadError(f"{os.fspath(path)} is not UTF-8 text: {exc.reason}") from exc
    try:
        value = json.loads(text, object_pairs_hook=_reject_duplicate_keys, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise EnvelopeLoadError(
            f"{os.fspath(path)} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except ValueError as exc:  # raised by the hooks below
        raise EnvelopeLoadError(f"{os.fspath(path)} is not acceptable JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise EnvelopeLoadError(f"{os.fspath(path)} holds JSON {type(value).__name__}, not an object")
    return value


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
    started = _parse_utc(result.started_at, "started_at")
    ended = _parse_utc(result.ended_at, "ended_at")
    if ended < started:
        raise CertificateRefusedError("erase result ended before it started")
    for index, command in enumerate(result.commands):
        _parse_utc(command.started_at, f"commands[{index}].started_at")
        _parse_utc(command.ended_at, f"commands[{index}].ended_at")


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
    destination = _enum_value(Destination, context.destination)
    _enum_value(MediaSource, context.media_source)
    _enum_value(DataBackedUp, context.data_backed_up)
    if destination == Destination.OTHER and not (context.destination_detail or "").strip():
        raise CertificateRefusedError("destination 'other' needs destination_detail")
    digest = context.custody_previous_entry_sha256
    if digest is not None and not _HEX_SHA256.fullmatch(digest):
        raise CertificateRefusedError("custody_previous_entry_sha256 is not 64 lowercase hex digits")
    if context.custody_sequence is not None and context.custody_sequence < 0:
        raise CertificateRefusedError("custody_sequence is negative")


# --- helpers ------------------------------------------------------------------------------------


def _enum_value(enum_type: type[StrEnum], value: object) -> str:
    """The enum's wire value; a bare string from a caller is accepted only if it is a member."""
    try:
        return enum_type(value).value
    except ValueError as exc:
        raise CertificateRefusedError(f"{value!r} is not a {enum_type.__name__}") from exc


def _person(person: Person, role: str) -> dict[str, Any]:
    return {
        "name": person.name,
        "title": person.title,
        "organisation": person.organisation,
        "location": person.location,
        "contact": person.contact,
        "date": _utc_iso(person.date, f"{role}.date"),
    }


def _utc_iso(moment: datetime, name: str) -> str:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise CertificateRefusedError(f"{name} must be timezone-aware")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _normalised_utc(text: str, name: str) -> str:
    """The engine's UTC time in this format's single spelling (``...Z``); the instant is unchanged."""
    return _utc_iso(_parse_utc(text, name), name)


def _parse_utc(text: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError) as exc:
        raise CertificateRefusedError(f"{name} {text!r} is not an ISO 8601 time") from exc
    if moment.utcoffset() != timedelta(0):
        raise CertificateRefusedError(f"{name} {text!r} is not in UTC")
    return moment


def _require_exact_fields(obj: Mapping[str, Any], fields: tuple[str, ...], prefix: str) -> None:
    for name in fields:
        if name not in obj:
            raise MalformedEnvelopeError(f"malformed envelope: missing field '{prefix}{name}'")
    for name in obj:
        if name not in fields:  # unsigned extras could mislead a reader: reject them
            raise MalformedEnvelopeError(f"malformed envelope: unexpected field '{prefix}{name}'")


def _require_type(value: Any, expected: type, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, expected):
        raise MalformedEnvelopeError(
            f"malformed envelope: field '{name}' must be {'a string' if expected is str else 'an integer'}"
        )


def _strict_b64decode(text: str) -> bytes:
    try:
        decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedEnvelopeError("malformed envelope: 'signature.value' is not base64") from exc
    # b64decode ignores non-zero trailing bits, so two spellings decode alike: accept only one.
    if base64.b64encode(decoded).decode("ascii") != text:
        raise MalformedEnvelopeError("malformed envelope: 'signature.value' is not canonical base64")
    return decoded


def _is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name}")
