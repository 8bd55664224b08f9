"""Storing and checking signed sanitisation certificates against the site's key."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlmodel import Session

from factory.kernel.errors import Conflict
from factory.kernel.lifecycle.guards import CertificateVerifier
from factory.kernel.models.certificate import Certificate
from factory.kernel.models.device import Device, StorageMedium
from imaging.certificate import dumps_envelope, verify_certificate


def make_verifier(public_key: Ed25519PublicKey) -> CertificateVerifier:
    def verify(envelope_text: str) -> Mapping[str, Any]:
        envelope = json.loads(envelope_text)
        return verify_certificate(envelope, public_key).certificate

    return verify


def record_certificate(
    session: Session,
    *,
    device: Device,
    medium: StorageMedium,
    envelope: Mapping[str, Any],
    erase_round_seq: int,
) -> Certificate:
    """Store an issued certificate; the envelope text is kept byte-for-byte as signed."""
    doc = envelope["certificate"]
    if doc["media"]["serial_number"] != medium.serial or doc["device"]["serial_number"] != device.serial:
        raise Conflict(f"certificate {doc['certificate_id']} does not name {device.serial}/{medium.serial}")
    row = Certificate(
        id=doc["certificate_id"],
        device_id=device.id or 0,
        medium_id=medium.id or 0,
        device_serial=device.serial,
        medium_serial=medium.serial,
        asset_tag=device.asset_tag,
        erase_round_seq=erase_round_seq,
        level=doc["sanitisation"]["level_achieved"],
        method=doc["sanitisation"]["method"],
        destination=doc["destination"]["category"],
        digest_sha256=envelope["signature"]["digest_sha256"],
        key_fingerprint=envelope["signature"]["key_fingerprint"],
        issued_at=doc["issued_at"],
        envelope=dumps_envelope(envelope).decode("utf-8"),
    )
    session.add(row)
    session.flush()
    return row
