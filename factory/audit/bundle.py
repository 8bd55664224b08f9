"""An evidence bundle an auditor can verify offline: one zip file.

    README.txt                          what is inside and how to check it
    verify_bundle.py                    standalone checker (cryptography + rfc8785 only)
    manifest.json                       what was exported, when, by whom; the ledger head then
    keys/site-public-key.pem            the site's Ed25519 public key
    keys/site-public-key.fingerprint.txt
    certificates/<id>.json              each signed envelope, byte for byte as stored
    certificates/<id>.pdf               its human-readable rendering
    custody/entries.jsonl               every custody entry the certificates name, and each
                                        exported device's whole history, one JSON object a line

Certificates are exported as stored; nothing is re-signed. An entry is written with exactly the
fields its hash covers (``factory.kernel.ledger.hashing.HASHED_FIELDS``, evidence as an object) plus
``entry_hash``, so the checker recomputes every hash from the file alone.
"""

from __future__ import annotations

import json
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select
from sqlmodel import Session

from factory.audit.certificate_check import get_certificate
from factory.audit.errors import AuditRequestInvalid
from factory.audit.history import device_entries, entry_record
from factory.intake.views import get_device
from factory.kernel.clock import utc_now
from factory.kernel.ledger.anchor import sign_entry
from factory.kernel.models.certificate import Certificate
from factory.kernel.models.custody_entry import CustodyEntry
from factory.kernel.models.device import Device
from imaging import signing
from imaging.certificate import CertificateError
from imaging.certificate_pdf import render_pdf

BUNDLE_FORMAT = "device-factory-audit-bundle"
BUNDLE_VERSION = 1
MAX_DEVICES = 200
VERIFIER_SOURCE = Path(__file__).with_name("verify_bundle.py")


@dataclass(frozen=True)
class BundleSummary:
    devices: list[str]
    certificates: list[str]
    entries: int
    key_fingerprint: str


def export_bundle(
    session: Session,
    public_key: Ed25519PublicKey,
    out: IO[bytes],
    *,
    serials: Sequence[str] = (),
    certificate_ids: Sequence[str] = (),
    site: str,
    exported_by: str,
    head_key: Ed25519PrivateKey | None = None,
) -> BundleSummary:
    """Write the bundle for the given devices (all their certificates) and certificates to ``out``.

    With ``head_key`` (the site signing key) the ledger head at export goes in signed, as
    ``ledger-anchor.json``: kept by the auditor, it later proves no entry up to it was removed.

    :raises AuditRequestInvalid: nothing named, or more than ``MAX_DEVICES`` devices.
    :raises factory.kernel.errors.NotFound: a serial or certificate id that does not exist.
    """
    devices, certificates = _select(session, serials, certificate_ids)
    histories = {d_id: device_entries(session, d_id) for d_id in devices}
    entries = _entries(session, histories, certificates.values())
    head = session.execute(
        select(CustodyEntry.seq, CustodyEntry.entry_hash).order_by(CustodyEntry.seq.desc()).limit(1)  # type: ignore[attr-defined]
    ).first()
    fingerprint = signing.key_fingerprint(public_key)
    ordered = sorted(certificates.values(), key=lambda c: (c.device_serial, c.issued_at, c.id))
    manifest = _manifest(site, exported_by, fingerprint, head, devices, histories, ordered)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("README.txt", _readme(site, fingerprint))
        zf.writestr("verify_bundle.py", VERIFIER_SOURCE.read_text(encoding="utf-8"))
        zf.writestr("manifest.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        zf.writestr("keys/site-public-key.pem", signing.public_key_to_pem(public_key))
        zf.writestr("keys/site-public-key.fingerprint.txt", fingerprint + "\n")
        if head_key is not None and head is not None:
            zf.writestr("ledger-anchor.json", sign_entry(head_key, site, head[0], head[1]).dumps())
        _write_certificates(zf, ordered)
        lines = [json.dumps(entry_record(entries[s]), ensure_ascii=False, sort_keys=True) for s in sorted(entries)]
        zf.writestr("custody/entries.jsonl", "\n".join(lines) + "\n")
    return BundleSummary(
        devices=sorted(d.serial for d in devices.values()),
        certificates=[c.id for c in ordered],
        entries=len(entries),
        key_fingerprint=fingerprint,
    )


def _select(
    session: Session, serials: Sequence[str], certificate_ids: Sequence[str]
) -> tuple[dict[int, Device], dict[str, Certificate]]:
    """The devices and certificates to export: a device named by serial brings all its certificates,
    a certificate named by id brings its device (and only itself)."""
    devices: dict[int, Device] = {}
    for serial in serials:
        device = get_device(session, serial)
        devices[device.id or 0] = device
    whole_devices = set(devices)  # named by serial: every certificate of theirs goes in
    certificates: dict[str, Certificate] = {}
    for cid in certificate_ids:
        cert = get_certificate(session, cid)
        certificates[cert.id] = cert
        if cert.device_id not in devices:
            found = session.get(Device, cert.device_id)
            if found is not None:
                devices[cert.device_id] = found
    if not devices:
        raise AuditRequestInvalid("name at least one device serial or certificate id to export")
    if len(devices) > MAX_DEVICES:
        raise AuditRequestInvalid(f"at most {MAX_DEVICES} devices per bundle")
    for device_id in whole_devices:
        for cert in session.execute(select(Certificate).where(Certificate.device_id == device_id)).scalars():
            certificates[cert.id] = cert
    return devices, certificates


def _entries(
    session: Session, histories: dict[int, list[CustodyEntry]], certificates: Iterable[Certificate]
) -> dict[int, CustodyEntry]:
    """Every exported device's whole history, and the entry each certificate names, by seq."""
    entries: dict[int, CustodyEntry] = {e.seq: e for history in histories.values() for e in history}
    for cert in certificates:
        seq = json.loads(cert.envelope).get("certificate", {}).get("custody", {}).get("sequence")
        if isinstance(seq, int) and seq not in entries:
            named = session.get(CustodyEntry, seq)
            if named is not None:
                entries[seq] = named
    return entries


def _manifest(
    site: str,
    exported_by: str,
    fingerprint: str,
    head: Sequence[Any] | None,
    devices: dict[int, Device],
    histories: dict[int, list[CustodyEntry]],
    ordered: Sequence[Certificate],
) -> dict[str, Any]:
    """What was exported, when and by whom, and the ledger head at that moment."""
    return {
        "format": BUNDLE_FORMAT,
        "version": BUNDLE_VERSION,
        "site": site,
        "exported_at": utc_now(),
        "exported_by": exported_by,
        "key_fingerprint": fingerprint,
        "ledger_head": {"seq": head[0], "entry_hash": head[1]} if head else None,
        "devices": [
            {
                "serial": d.serial,
                "asset_tag": d.asset_tag,
                "state": d.state,
                "entries": [e.seq for e in histories[d_id]],
                "certificates": [c.id for c in ordered if c.device_id == d_id],
            }
            for d_id, d in sorted(devices.items(), key=lambda item: item[1].serial)
        ],
        "certificates": [_manifest_certificate(c) for c in ordered],
    }


def _manifest_certificate(c: Certificate) -> dict[str, Any]:
    return {
        "id": c.id,
        "device_serial": c.device_serial,
        "medium_serial": c.medium_serial,
        "issued_at": c.issued_at,
        "digest_sha256": c.digest_sha256,
        "json": f"certificates/{c.id}.json",
        "pdf": f"certificates/{c.id}.pdf",
    }


def _write_certificates(zf: zipfile.ZipFile, ordered: Sequence[Certificate]) -> None:
    """Each envelope byte for byte as stored, and its PDF rendering where the content still renders."""
    with tempfile.TemporaryDirectory() as tmp:
        for cert in ordered:
            zf.writestr(f"certificates/{cert.id}.json", cert.envelope)
            pdf = Path(tmp) / f"{cert.id}.pdf"
            try:
                render_pdf(json.loads(cert.envelope), pdf)
            except (CertificateError, ValueError):
                continue  # altered content: no rendering; the checker reports it by name
            zf.write(pdf, f"certificates/{cert.id}.pdf")


def _readme(site: str, fingerprint: str) -> str:
    return f"""Device Factory audit bundle - site {site}

This archive holds sanitisation certificates and the chain-of-custody entries behind them, so
that they can be checked without access to the site's systems.

Contents
  certificates/<id>.json   signed certificate (the evidence); see "Certificate format" below
  certificates/<id>.pdf    a human-readable rendering of the same certificate (not evidence)
  custody/entries.jsonl    custody ledger entries, one JSON object per line, in sequence order:
                           every entry a certificate names, and each exported device's whole history
  keys/site-public-key.pem the site's Ed25519 public key
  keys/site-public-key.fingerprint.txt   its fingerprint: {fingerprint}
  manifest.json            what was exported, by whom and when, and the ledger head at that time
  verify_bundle.py         the checker described below

How to verify
  1. Obtain the site's public key fingerprint through a channel other than this archive (the
     site publishes it) and compare it with {fingerprint}.
  2. With Python 3.9 or later:   pip install cryptography rfc8785
  3. In the unpacked directory:  python verify_bundle.py --fingerprint <published fingerprint>
     (or --key <public key file from the site> to use a key you obtained yourself).
  It prints "OK: ..." and exits 0 when everything verifies; otherwise one "FAIL: ..." line per
  problem naming the certificate or custody entry, and exits 1.

What is checked
  - Each certificate: its SHA-256 digest over the RFC 8785 (JCS) canonical form of the
    "certificate" member, and the Ed25519 signature over those canonical bytes, with the site key.
  - Each custody entry: entry_hash = SHA-256 of the RFC 8785 canonical JSON of all its other
    fields (seq, device_serial, event, from_state, to_state, actor, from_custodian, to_custodian,
    location, occurred_at, evidence, prev_hash). Entries with consecutive sequence numbers must
    link: prev_hash equals the entry_hash of the entry before (entry 1 links to 64 zeros).
  - Each certificate extends the custody entry it names in custody.sequence (the start of the
    erase round for that device), whose hash must equal custody.previous_entry_sha256.

Limits
  The archive itself is not signed: it proves that what it contains is authentic and unaltered,
  not that nothing was left out. Entries of other devices between this device's entries are not
  included; to place them in the whole chain, ask the site to run "factory ledger verify" in
  your presence and compare its head hash with ledger_head in manifest.json (the head at export).
  ledger-anchor.json is that head signed with the site key: keep it. Later, in your presence,
  "factory ledger verify --anchor ledger-anchor.json" proves that no custody entry up to it has
  since been removed or changed (entries cut off the end of the chain leave no trace otherwise).

Certificate format: docs/certificate-format.md in the Device Factory source.
"""
