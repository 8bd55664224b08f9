"""The signed envelope around a certificate: RFC 8785 canonical bytes, the detached Ed25519
signature over them, and the offline check of both (``docs/certificate-format.md``)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from imaging import canonical_json, signing
from imaging.certificate_errors import (
    CertificateContentError,
    DigestMismatchError,
    EnvelopeLoadError,
    KeyMismatchError,
    MalformedEnvelopeError,
    UnsupportedEnvelopeError,
)
from imaging.offline_verify import DuplicateMemberError, exact_members, reject_constant, unique_members

ENVELOPE_FORMAT = "device-factory-certificate"
SCHEMA_VERSION = 2  # what is issued now; every version in SUPPORTED_SCHEMA_VERSIONS verifies, forever
SUPPORTED_SCHEMA_VERSIONS = (1, 2)
CERTIFICATE_TYPES = ("sanitisation", "destruction")  # schema version 2's ``certificate_type``
SIGNATURE_ALGORITHM = "Ed25519"
MAX_ENVELOPE_BYTES = 64 * 1024 * 1024  # a certificate with full command output stays far below this

HEX_SHA256 = re.compile(r"[0-9a-f]{64}")
_ENVELOPE_FIELDS = ("format", "schema_version", "certificate", "signature")
_SIGNATURE_FIELDS = ("algorithm", "key_fingerprint", "digest_sha256", "value")


@dataclass(frozen=True)
class VerifiedCertificate:
    """A certificate whose digest and signature checked out under ``key_fingerprint``."""

    certificate_id: str
    key_fingerprint: str
    digest_sha256: str
    certificate: Mapping[str, Any]


def canonical_bytes(certificate: Mapping[str, Any]) -> bytes:
    """RFC 8785 (JCS) canonical UTF-8 bytes: what the digest and the signature cover."""
    try:
        return canonical_json.canonical_bytes(certificate)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise CertificateContentError(f"certificate is not canonical-JSON encodable: {exc}") from exc


def sign_certificate(doc: Mapping[str, Any], private_key: Ed25519PrivateKey) -> dict[str, Any]:
    """Wrap ``doc`` in a signed envelope (the document itself is copied, not changed)."""
    payload = canonical_bytes(doc)
    signature = signing.sign(private_key, payload)
    return {
        "format": ENVELOPE_FORMAT,
        "schema_version": SCHEMA_VERSION,
        # The signed bytes read back: a copy of exactly what was signed, made in C (a deepcopy of
        # a certificate with its command output cost more than the signing).
        "certificate": orjson.loads(payload),
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
    certificate, signature = _check_shape(envelope)
    _check_versions(envelope, signature)
    expected_fingerprint = signing.key_fingerprint(public_key)
    if signature["key_fingerprint"] != expected_fingerprint:
        raise KeyMismatchError(
            f"key fingerprint mismatch: signed by {signature['key_fingerprint']!r},"  # repr: stays one line
            f" verifying with {expected_fingerprint}"
        )
    payload, digest = _check_digest(certificate, signature["digest_sha256"])
    signature_bytes = _strict_b64decode(signature["value"])
    try:
        signing.verify(public_key, payload, signature_bytes)
    except signing.SignatureInvalidError as exc:
        # One reason for every bad signature (wrong length or wrong value): the key it failed under.
        raise signing.SignatureInvalidError(f"signature invalid for key {expected_fingerprint}") from exc
    version = certificate.get("schema_version")
    if type(version) is not int or version != envelope["schema_version"]:  # 1.0 and true equal 1 in Python
        raise MalformedEnvelopeError("malformed envelope: certificate schema_version differs from the envelope's")
    certificate_id = certificate.get("certificate_id")
    if not isinstance(certificate_id, str) or not _is_uuid(certificate_id):
        raise MalformedEnvelopeError("malformed envelope: 'certificate.certificate_id' is not a UUID")
    if version >= 2 and certificate.get("certificate_type") not in CERTIFICATE_TYPES:
        raise MalformedEnvelopeError("malformed envelope: 'certificate.certificate_type' is not a known type")
    return VerifiedCertificate(
        certificate_id=certificate_id,
        key_fingerprint=expected_fingerprint,
        digest_sha256=digest,
        certificate=orjson.loads(payload),  # a copy of exactly the bytes that verified
    )


def document_field(document: Mapping[str, Any], *keys: str) -> Any:
    """The member at ``keys`` in a (possibly altered) certificate document; ``None`` where the path
    does not exist, so a reader can report a missing member instead of failing on it."""
    value: Any = document
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


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
        value = json.loads(text, object_pairs_hook=unique_members, parse_constant=reject_constant)
    except DuplicateMemberError as exc:
        raise EnvelopeLoadError(f"{os.fspath(path)} is not acceptable JSON: duplicate key {exc.name!r}") from exc
    except json.JSONDecodeError as exc:
        raise EnvelopeLoadError(
            f"{os.fspath(path)} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except ValueError as exc:  # a non-finite number (reject_constant)
        raise EnvelopeLoadError(f"{os.fspath(path)} is not acceptable JSON: {exc}") from exc
    except RecursionError:
        raise EnvelopeLoadError(f"{os.fspath(path)} nests JSON too deeply to be a certificate") from None
    if not isinstance(value, dict):
        raise EnvelopeLoadError(f"{os.fspath(path)} holds JSON {type(value).__name__}, not an object")
    return value


# --- the steps of verify_certificate ------------------------------------------------------------


def _check_shape(envelope: Any) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """The envelope's ``certificate`` and ``signature`` members, once every field has its type."""
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
    return certificate, signature


def _check_versions(envelope: Mapping[str, Any], signature: Mapping[str, Any]) -> None:
    if envelope["format"] != ENVELOPE_FORMAT:
        raise UnsupportedEnvelopeError(f"unsupported format {envelope['format']!r}")
    if envelope["schema_version"] not in SUPPORTED_SCHEMA_VERSIONS:
        raise UnsupportedEnvelopeError(f"unsupported schema version {envelope['schema_version']}")
    if signature["algorithm"] != SIGNATURE_ALGORITHM:
        raise UnsupportedEnvelopeError(f"unsupported signature algorithm {signature['algorithm']!r}")


def _check_digest(certificate: Mapping[str, Any], recorded_digest: str) -> tuple[bytes, str]:
    """The canonical bytes the signature covers, and their digest, which must be the recorded one."""
    if not HEX_SHA256.fullmatch(recorded_digest):
        raise MalformedEnvelopeError("malformed envelope: 'signature.digest_sha256' is not 64 lowercase hex digits")
    try:
        payload = canonical_bytes(certificate)
    except CertificateContentError as exc:
        raise MalformedEnvelopeError(f"malformed envelope: {exc}") from exc
    actual_digest = hashlib.sha256(payload).hexdigest()
    if not hmac.compare_digest(actual_digest, recorded_digest):
        raise DigestMismatchError("digest mismatch: certificate content changed")
    return payload, actual_digest


def _require_exact_fields(obj: Mapping[str, Any], fields: tuple[str, ...], prefix: str) -> None:
    try:
        exact_members(obj, fields, prefix)  # unsigned extras could mislead a reader: rejected too
    except ValueError as exc:
        raise MalformedEnvelopeError(f"malformed envelope: {exc}") from None


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
