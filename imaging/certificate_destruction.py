"""Destruction certificates (schema version 2, ``certificate_type`` ``destruction``): one per
storage medium of a device whose physical destruction a second person witnessed.

NIST SP 800-88 Rev. 2's Destroy category; the technique is IEEE 2883-2022's Destruct, which names
the techniques and asks for the resulting particle size or the machine that did it. IEEE 2883 no
longer accepts shredding or pulverising alone as Destruct for every medium; they are recorded as
what was done, with the particle size that judges them. The same envelope, signature and
verifier as a sanitisation certificate (``certificate_envelope``).
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from imaging.certificate_context import DeviceInfo, Person, document_head, utc_iso
from imaging.certificate_envelope import HEX_SHA256, canonical_bytes
from imaging.certificate_errors import CertificateRefusedError
from imaging.certificate_sections import person_section, standards_section

# IEEE 2883 Destruct techniques, by the words a destruction request uses for them.
DESTRUCT_TECHNIQUES = {
    "disintegrat": "disintegrate",
    "incinerat": "incinerate",
    "melt": "melt",
    "smelt": "melt",
    "shred": "shred",
    "pulveri": "pulverize",
    "crush": "pulverize",
    "degauss": "degauss",
}
_PARTICLE = re.compile(r"(\d+(?:\.\d+)?)\s*mm\b", re.IGNORECASE)
_MAX_EXACT_SIZE = 2.0**53  # see _refuse


@dataclass(frozen=True)
class DestroyedMedium:
    serial_number: str
    media_type: str
    model: str | None = None


@dataclass(frozen=True)
class DestructionContext:
    """Everything a destruction certificate states."""

    organisation: str
    site: str
    device: DeviceInfo
    medium: DestroyedMedium
    method: str  # as the request described it, e.g. "disintegrator, 2 mm screen (Intimus 1000)"
    reason: str
    destroyed_at: datetime
    requested_by: Person
    witnessed_by: Person
    photo_sha256: Sequence[str]
    custody_previous_entry_sha256: str | None = None
    custody_sequence: int | None = None
    machine: str | None = None  # None: read from the method text where it names one in brackets


def destruct_technique(method: str) -> str | None:
    """The IEEE 2883 Destruct technique a request's method text names, or None."""
    lowered = method.lower()
    return next((name for word, name in DESTRUCT_TECHNIQUES.items() if word in lowered), None)


def particle_size_mm(method: str) -> float | None:
    match = _PARTICLE.search(method)
    return float(match.group(1)) if match else None


def machine_named(method: str) -> str | None:
    match = re.search(r"\(([^()]+)\)", method)
    return match.group(1).strip() if match and match.group(1).strip() else None


def build_destruction_certificate(
    context: DestructionContext, *, certificate_id: uuid.UUID | None = None, issued_at: datetime | None = None
) -> dict[str, Any]:
    """The unsigned destruction certificate of one medium; ``CertificateRefusedError`` when the
    record cannot support one (no witness, the requester as witness, no technique, neither the
    particle size nor the machine, no photo)."""
    technique = destruct_technique(context.method)
    size = particle_size_mm(context.method)
    machine = context.machine or machine_named(context.method)
    _refuse(context, technique, size, machine)
    doc: dict[str, Any] = {
        **document_head("destruction", context, standards_section(), certificate_id, issued_at),
        "media": {
            "serial_number": context.medium.serial_number,
            "media_type": context.medium.media_type,
            "model": context.medium.model,
        },
        "reason_for_destruction": context.reason,
        "destruction": {
            "category": "destroy",
            "technique": technique,
            "method": context.method,
            "particle_size_mm": size,
            "machine": machine,
            "destroyed_at": utc_iso(context.destroyed_at, "destroyed_at"),
            "photo_sha256": list(context.photo_sha256),
        },
        "personnel": {
            "requested_by": person_section(context.requested_by, "requested_by"),
            "witnessed_by": person_section(context.witnessed_by, "witnessed_by"),
        },
        "custody": {
            "previous_entry_sha256": context.custody_previous_entry_sha256,
            "sequence": context.custody_sequence,
        },
    }
    canonical_bytes(doc)
    return doc


def _refuse(context: DestructionContext, technique: str | None, size: float | None, machine: str | None) -> None:
    if technique is None:
        raise CertificateRefusedError(f"method {context.method!r} names no IEEE 2883 Destruct technique")
    if size is None and machine is None:
        raise CertificateRefusedError("a destruction certificate needs the particle size or the machine")
    if size is not None and not (math.isfinite(size) and 0 < size < _MAX_EXACT_SIZE):
        # From 2**53 up, JCS writes the double as an integer (20000000000000000) and a verifier's
        # JSON parser reads that back as an integer beyond 2**53 - 1, which RFC 8785 canonicalisers
        # (rfc8785) refuse: a certificate signed with such a size could never verify.
        raise CertificateRefusedError(f"particle size {size!r} mm is not a positive size below 2**53")
    if not context.witnessed_by.name.strip() or context.witnessed_by.name == context.requested_by.name:
        raise CertificateRefusedError("a destruction certificate needs a witness other than the requester")
    if not context.photo_sha256 or not all(HEX_SHA256.fullmatch(d) for d in context.photo_sha256):
        raise CertificateRefusedError("a destruction certificate needs the SHA-256 of at least one photo")
    for name, value in (("organisation", context.organisation), ("site", context.site), ("reason", context.reason)):
        if not value.strip():
            raise CertificateRefusedError(f"context field {name} is empty")
