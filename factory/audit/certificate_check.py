"""Re-checking one stored certificate: its signature, its indexed columns, its custody link.

A stored certificate row has two parts: the signed envelope (the evidence) and the columns that
index it (what search filters on). An auditor needs both to agree, and the certificate to extend
the custody chain where it says it does: the ``start_sanitise`` entry that opened its erase round.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlmodel import Session

from factory.audit.errors import CertificateNotFound, CertificateUnrenderable
from factory.kernel.key_registry import Keyring
from factory.kernel.lifecycle.states import Event
from factory.kernel.models.certificate import Certificate
from factory.kernel.models.custody_entry import CustodyEntry
from imaging.certificate import CertificateError, VerifiedCertificate, document_field, verify_certificate
from imaging.certificate_pdf import render_pdf

# What an audit checks signatures with: the site key list (each certificate against the key its
# signature names, valid when it was issued: rotated and other sites' keys included), or one key.
SiteKeyList = Keyring | Ed25519PublicKey


def verify_stored(envelope: Any, keys: SiteKeyList) -> VerifiedCertificate:
    """Verify a stored envelope with the key its signature names, valid at its ``issued_at``.

    :raises CertificateError: a bad signature or document, or a key unknown, revoked, retired or
        not yet valid at the certificate's time (``KeyNotValid``, with the reason).
    """
    if isinstance(keys, Ed25519PublicKey):
        return verify_certificate(envelope, keys)
    signature = envelope.get("signature") if isinstance(envelope, dict) else None
    fingerprint = signature.get("key_fingerprint") if isinstance(signature, dict) else None
    if not isinstance(fingerprint, str) and keys.records:
        # Malformed: let the verifier name what is wrong, with any key (it fails before the signature).
        fingerprint = next(iter(keys.records))
    verified = verify_certificate(envelope, keys.public_key(fingerprint))
    keys.check_time(str(fingerprint), verified.certificate.get("issued_at"))
    return verified


@dataclass(frozen=True)
class CertificateCheck:
    certificate_id: str
    ok: bool
    signature_ok: bool
    digest_sha256: str | None
    key_fingerprint: str | None
    problems: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        return {
            "certificate_id": self.certificate_id,
            "ok": self.ok,
            "signature_ok": self.signature_ok,
            "digest_sha256": self.digest_sha256,
            "key_fingerprint": self.key_fingerprint,
            "problems": list(self.problems),
        }


def get_certificate(session: Session, certificate_id: str) -> Certificate:
    cert = session.get(Certificate, certificate_id.strip())
    if cert is None:
        raise CertificateNotFound(f"no certificate with id {certificate_id.strip()}")
    return cert


def check_certificate(session: Session, cert: Certificate, keys: SiteKeyList) -> CertificateCheck:
    """Verify the envelope against the site key list, then its columns and custody link against it."""
    try:
        verified = verify_stored(json.loads(cert.envelope), keys)
    except (CertificateError, ValueError) as exc:  # ValueError: the stored text is not JSON
        return CertificateCheck(cert.id, False, False, None, None, (f"signature: {exc}",))
    doc = verified.certificate
    problems = [*_column_mismatches(cert, doc, verified.digest_sha256), *_custody_problems(session, cert, doc)]
    return CertificateCheck(
        certificate_id=cert.id,
        ok=not problems,
        signature_ok=True,
        digest_sha256=verified.digest_sha256,
        key_fingerprint=verified.key_fingerprint,
        problems=tuple(problems),
    )


def _column_mismatches(cert: Certificate, doc: Mapping[str, Any], digest: str) -> list[str]:
    signed = {
        "id": doc.get("certificate_id"),
        "device_serial": document_field(doc, "device", "serial_number"),
        "medium_serial": document_field(doc, "media", "serial_number"),
        "asset_tag": document_field(doc, "device", "asset_tag"),
        "level": document_field(doc, "sanitisation", "level_achieved"),
        "method": document_field(doc, "sanitisation", "method"),
        "destination": document_field(doc, "destination", "category"),
        "issued_at": doc.get("issued_at"),
        "erase_round_seq": document_field(doc, "custody", "sequence"),
        "digest_sha256": digest,
    }
    out = [
        f"column {name} is {getattr(cert, name)!r} but the signed certificate says {value!r}"
        for name, value in signed.items()
        if getattr(cert, name) != value
    ]
    if not document_field(doc, "verification", "passed"):
        out.append("the signed certificate records a failed verification")
    return out


def _custody_problems(session: Session, cert: Certificate, doc: Mapping[str, Any]) -> list[str]:
    seq = document_field(doc, "custody", "sequence")
    named_hash = document_field(doc, "custody", "previous_entry_sha256")
    if not isinstance(seq, int):
        return ["the certificate names no custody entry"]
    entry = session.get(CustodyEntry, seq)
    if entry is None:
        return [f"custody entry {seq} named by the certificate does not exist"]
    out = []
    if entry.entry_hash != named_hash:
        out.append(f"custody entry {seq} has hash {entry.entry_hash}, the certificate names {named_hash}")
    if entry.event != Event.START_SANITISE:
        out.append(f"custody entry {seq} is a '{entry.event}' entry, not the start of an erase round")
    if entry.device_serial != document_field(doc, "device", "serial_number"):
        out.append(f"custody entry {seq} is for device {entry.device_serial}, not the certificate's device")
    return out


def certificate_pdf(cert: Certificate) -> bytes:
    """The PDF rendering of a stored certificate (refused if its content no longer matches its digest)."""
    try:
        envelope = json.loads(cert.envelope)
        with tempfile.TemporaryDirectory(prefix="df-cert-pdf-") as tmp:
            path = Path(tmp) / f"{cert.id}.pdf"
            render_pdf(envelope, path)
            return path.read_bytes()
    except (CertificateError, ValueError) as exc:
        raise CertificateUnrenderable(f"certificate {cert.id} cannot be rendered: {exc}") from exc
