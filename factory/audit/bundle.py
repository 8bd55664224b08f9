"""An evidence bundle an auditor can verify offline: one zip file.

    README.txt                          what is inside and how to check it
    verify_bundle.py                    standalone checker (cryptography + rfc8785 only), with its
                                        companions verify_bundle_keys.py and offline_verify.py
    manifest.json                       what was exported, when, by whom; the signed tree head;
                                        the SHA-256 of every other file
    manifest.sig.json                   the site key's signature over the manifest
    keys/site-public-key.pem            the site's Ed25519 public key
    keys/site-public-key.fingerprint.txt
    keys/site-keys.json                 the signed list of every site key (validity, revocations)
    ledger/tree-head.json               the exporting site's custody log's tree head, signed at export
    ledger/tree-heads.json              the signed head of every log the entries are in (several
                                        when a device moved between sites sharing the database)
    ledger-anchor.json                  the chain head at export, signed (``ledger verify --anchor``)
    certificates/<id>.json              each signed envelope, byte for byte as stored
    certificates/<id>.pdf               its human-readable rendering
    custody/entries.jsonl               every custody entry the certificates name, and each
                                        exported device's whole history, one JSON object a line,
                                        each with its RFC 9162 inclusion proof (``audit_path``)

Certificates are exported as stored; nothing is re-signed. An entry is written with exactly the
fields its hash covers (``hashing.hashed_row``: by its hash version, evidence as an object) plus
``entry_hash``, the log it is proved in (``in_log``) and its audit path to that log's signed tree
head, so the checker recomputes every hash and proves every entry in its signed log from the file
alone: an entry edited (hash recomputed or not), added, removed or moved (within a log or to
another) fails, and so does a missing head or manifest signature. The exporting site signs a head
of its own log at export; another site's log is proved against that site's latest signed head,
which must cover the entries (it signs on its schedule, or 'factory ledger head' at that site).
"""

from __future__ import annotations

import base64
import hashlib
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
from factory.audit.history import columns_of, device_entries, entry_record
from factory.intake.views import get_device
from factory.kernel.canonical import canonical_bytes
from factory.kernel.clock import utc_now
from factory.kernel.key_registry import ensure_registered, list_keys, signed_key_list
from factory.kernel.ledger import merkle
from factory.kernel.ledger.anchor import sign_entry
from factory.kernel.ledger.heads import TreeHead, latest_head, sign_tree_head
from factory.kernel.ledger.logs import first_link
from factory.kernel.ledger.tree import node_source
from factory.kernel.models.certificate import Certificate
from factory.kernel.models.custody_entry import CustodyEntry
from factory.kernel.models.device import Device
from imaging import offline_verify, signing
from imaging.certificate import CertificateError
from imaging.certificate_pdf import render_pdf

BUNDLE_FORMAT = "device-factory-audit-bundle"
BUNDLE_VERSION = 3  # 3: a signed head per log the entries are in (per-site logs)
MAX_DEVICES = 200
VERIFIER_SOURCE = Path(__file__).with_name("verify_bundle.py")
# The verification primitives the checker shares with the factory (and docs/verify_*.py).
PRIMITIVES_SOURCE = Path(offline_verify.__file__)


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

    ``head_key`` (the site signing key) signs a tree head over the whole log at export (kept in
    the database too), the manifest, and the chain anchor ``ledger-anchor.json``.

    :raises AuditRequestInvalid: nothing named, more than ``MAX_DEVICES`` devices, or no signing key.
    :raises factory.kernel.errors.NotFound: a serial or certificate id that does not exist.
    """
    if head_key is None:
        raise AuditRequestInvalid("an audit bundle is signed: the site signing key is needed")
    devices, certificates = _select(session, serials, certificate_ids)
    histories = {d_id: device_entries(session, d_id) for d_id in devices}
    entries = _entries(session, histories, certificates.values())
    head = sign_tree_head(session, head_key, site, kind="bundle")
    heads = _heads(session, entries, head)
    ensure_registered(session, site, public_key)
    fingerprint = signing.key_fingerprint(public_key)
    ordered = sorted(certificates.values(), key=lambda c: (c.device_serial, c.issued_at, c.id))
    files = {
        "README.txt": _readme(site, fingerprint).encode("utf-8"),
        "verify_bundle.py": VERIFIER_SOURCE.read_bytes(),
        "verify_bundle_keys.py": VERIFIER_SOURCE.with_name("verify_bundle_keys.py").read_bytes(),
        "offline_verify.py": PRIMITIVES_SOURCE.read_bytes(),
        "keys/site-public-key.pem": signing.public_key_to_pem(public_key),
        "keys/site-public-key.fingerprint.txt": (fingerprint + "\n").encode("ascii"),
        "keys/site-keys.json": _json(signed_key_list(list_keys(session), head_key, site)),
        "ledger/tree-head.json": head.dumps(),
        "ledger/tree-heads.json": _json([h.as_dict() for h in heads.values()]),
        **_certificate_files(ordered),
        "custody/entries.jsonl": _entry_lines(session, entries, heads),
    }
    head_hash = _chain_head(session, head)  # the own log's chain head at the same moment
    files["ledger-anchor.json"] = sign_entry(head_key, site, head.tree_size, head_hash).dumps()
    manifest = _manifest(site, exported_by, fingerprint, (head, head_hash), devices, histories, ordered)
    manifest["tree_heads"] = [h.as_dict() for h in heads.values()]
    manifest["entries"] = sorted(entries)
    manifest["files"] = {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())}
    _write_zip(out, files, manifest, head_key)
    return BundleSummary(
        devices=sorted(d.serial for d in devices.values()),
        certificates=[c.id for c in ordered],
        entries=len(entries),
        key_fingerprint=fingerprint,
    )


def _write_zip(out: IO[bytes], files: dict[str, bytes], manifest: dict[str, Any], key: Ed25519PrivateKey) -> None:
    """The files, the manifest, and the site key's signature over the manifest."""
    value = base64.b64encode(signing.sign(key, canonical_bytes(manifest))).decode("ascii")
    signed = {"key_fingerprint": signing.key_fingerprint(key.public_key()), "signature": value}
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr("manifest.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        zf.writestr("manifest.sig.json", _json(signed))


def _json(doc: Any) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _chain_head(session: Session, head: TreeHead) -> str:
    """The hash of the own log's entry at the head's size (its position); its genesis when empty."""
    if head.tree_size == 0:
        return first_link(head.log, 3)
    found = session.execute(
        select(CustodyEntry.entry_hash).where(
            CustodyEntry.log == head.log,  # type: ignore[arg-type]
            CustodyEntry.log_seq == head.tree_size,  # type: ignore[arg-type]
        )
    ).scalar_one()
    return str(found)


def _heads(session: Session, entries: dict[int, CustodyEntry], own: TreeHead) -> dict[str, TreeHead]:
    """The signed head of each log the entries are in: the own one signed now, the others' latest.

    :raises AuditRequestInvalid: another site's log has no signed head covering the entries.
    """
    heads = {own.log: own}
    for entry in entries.values():
        if entry.log in heads:
            found = heads[entry.log]
        else:
            found = heads[entry.log] = latest_head(session, entry.log) or _uncovered(entry, None)
        if entry.log_seq > found.tree_size:
            _uncovered(entry, found)
    return heads


def _uncovered(entry: CustodyEntry, head: TreeHead | None) -> TreeHead:
    signed = f"its latest signed head is of size {head.tree_size}" if head else "it has no signed head"
    raise AuditRequestInvalid(
        f"custody entry {entry.seq} is in the log of site {entry.log!r}, and {signed}:"
        " that site signs one on its schedule or with 'factory ledger head'"
    )


def _leaf_index(entry: CustodyEntry) -> int:
    return entry.log_seq - 1


def _entry_lines(session: Session, entries: dict[int, CustodyEntry], heads: dict[str, TreeHead]) -> bytes:
    """Each entry as hashed, with the log it is in and its audit path to that log's signed head
    (checked before it is written)."""
    sources = {log: node_source(session, log) for log in heads}
    lines = []
    for seq in sorted(entries):
        entry, head = entries[seq], heads[entries[seq].log]
        record = entry_record(entry)
        path = merkle.inclusion_proof(_leaf_index(entry), head.tree_size, sources[head.log])
        leaf = merkle.leaf_hash(canonical_bytes({k: v for k, v in record.items() if k != "entry_hash"}))
        merkle.verify_inclusion(_leaf_index(entry), head.tree_size, leaf, path, bytes.fromhex(head.root_hash))
        line = {**record, "in_log": head.log, "audit_path": [p.hex() for p in path]}
        lines.append(json.dumps(line, ensure_ascii=False, sort_keys=True))
    return ("\n".join(lines) + "\n").encode("utf-8")


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
    heads: tuple[TreeHead, str],
    devices: dict[int, Device],
    histories: dict[int, list[CustodyEntry]],
    ordered: Sequence[Certificate],
) -> dict[str, Any]:
    """What was exported, when and by whom, and the signed tree head at that moment."""
    return {
        "format": BUNDLE_FORMAT,
        "version": BUNDLE_VERSION,
        "site": site,
        "exported_at": utc_now(),
        "exported_by": exported_by,
        "key_fingerprint": fingerprint,
        "ledger_head": {"seq": heads[0].tree_size, "entry_hash": heads[1]},
        "tree_head": heads[0].as_dict(),
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
        **columns_of(c, ("id", "device_serial", "medium_serial", "issued_at", "digest_sha256")),
        "json": f"certificates/{c.id}.json",
        "pdf": f"certificates/{c.id}.pdf",
    }


def _certificate_files(ordered: Sequence[Certificate]) -> dict[str, bytes]:
    """Each envelope byte for byte as stored, and its PDF rendering where the content still renders."""
    files: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for cert in ordered:
            files[f"certificates/{cert.id}.json"] = cert.envelope.encode("utf-8")
            pdf = Path(tmp) / f"{cert.id}.pdf"
            try:
                render_pdf(json.loads(cert.envelope), pdf)
            except (CertificateError, ValueError):
                continue  # altered content: no rendering; the checker reports it by name
            files[f"certificates/{cert.id}.pdf"] = pdf.read_bytes()
    return files


_README = """Device Factory audit bundle - site {site}

This archive holds sanitisation certificates and the chain-of-custody entries behind them, so
that they can be checked without access to the site's systems.

Contents
  certificates/<id>.json   signed certificate (the evidence); see "Certificate format" below
  certificates/<id>.pdf    a human-readable rendering of the same certificate (not evidence)
  custody/entries.jsonl    custody ledger entries, one JSON object per line, in sequence order:
                           every entry a certificate names, and each exported device's whole
                           history, each with its inclusion proof in the signed log (audit_path)
  ledger/tree-head.json    the site's custody log's Merkle tree head (size, root), signed at export
  ledger/tree-heads.json   the signed head of every log the entries are in (sites sharing a
                           database each have a log; a device that moved sites is in several)
  ledger-anchor.json       the chain's head (sequence, hash) at export, signed
  keys/site-public-key.pem the site's Ed25519 public key
  keys/site-public-key.fingerprint.txt   its fingerprint: {fingerprint}
  keys/site-keys.json      the signed list of every site key: validity, retirement, revocation
  manifest.json            what was exported, by whom and when, the signed tree head, and the
                           SHA-256 of every other file
  manifest.sig.json        the site key's Ed25519 signature over manifest.json (RFC 8785 form)
  verify_bundle.py         the checker described below (and its companions verify_bundle_keys.py
                           and offline_verify.py, the verification primitives it imports)

How to verify
  1. Obtain the site's public key fingerprint through a channel other than this archive (the
     site publishes it) and compare it with {fingerprint}.
  2. With Python 3.9 or later:   pip install cryptography rfc8785
  3. In the unpacked directory:  python verify_bundle.py --fingerprint <published fingerprint>
     (or --key <public key file from the site> to use a key you obtained yourself).
  It prints "OK: ..." and exits 0 when everything verifies; otherwise one "FAIL: ..." line per
  problem naming the certificate or custody entry, and exits 1.

What is checked
  - The key list is signed by a site key that the fingerprint you trust is, or endorsed (each
    key after a rotation is endorsed by the key it replaced). Every signature below must be by a
    key in that list that was valid at the time the signed document states.
  - manifest.json is signed (manifest.sig.json), and every file it lists has its SHA-256; a file
    not listed, or missing, fails.
  - Each certificate: its SHA-256 digest over the RFC 8785 (JCS) canonical form of the
    "certificate" member, and the Ed25519 signature over those canonical bytes, with the key the
    signature names.
  - Each custody entry: entry_hash = SHA-256 of the RFC 8785 canonical JSON of its hashed fields
    (seq, device_serial, event, from_state, to_state, actor, from_custodian, to_custodian,
    location, occurred_at, evidence, prev_hash; device_id and hash_version for version 2; and
    log and log_seq, the site's log it is in and its position there, for version 3). Each site
    sharing a database has its own log; in_log names the log an entry is proved in (a version 3
    entry's own log). Entries at consecutive positions of one log must link: prev_hash equals the
    entry_hash of the entry before (a log's first entry links to its genesis: SHA-256 of
    "device-factory/custody-log/1", a zero byte and the log's name; 64 zeros for the log from
    before per-site logs). Its audit_path must lead from its leaf (SHA-256 of 0x00 and those
    canonical bytes, RFC 9162) to the root of its log's signed tree head (ledger/tree-heads.json)
    at its position - 1: an entry edited, added, removed or moved fails.
  - Each certificate extends the custody entry it names in custody.sequence (the start of the
    erase round for that device), whose hash must equal custody.previous_entry_sha256.

Limits
  Entries of other devices are not included; the signed tree head commits to them all. Keep
  ledger/tree-head.json: later, "factory ledger consistency <it> latest" proves the log has only
  grown since, and "factory ledger verify --anchor ledger/tree-head.json" (in your presence)
  that no custody entry up to it was removed or changed.

Certificate format: docs/certificate-format.md in the Device Factory source.
"""


def _readme(site: str, fingerprint: str) -> str:
    return _README.format(site=site, fingerprint=fingerprint)
