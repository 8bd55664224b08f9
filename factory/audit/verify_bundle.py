"""Verify a Device Factory audit bundle offline. Needs Python 3.9+, `cryptography` and `rfc8785`.

Usage (from the unpacked bundle directory, or naming it):
    python verify_bundle.py [BUNDLE_DIR] [--key PUBLIC_KEY.pem] [--fingerprint SHA256:...]

Checks, and names every failure:
  1. the public key (the bundle's, or --key obtained through another channel) and its fingerprint
     (compared with --fingerprint when given: the value published by the site);
  2. every certificate in certificates/*.json: format, key fingerprint, SHA-256 digest of the
     RFC 8785 canonical certificate, Ed25519 signature; and that its PDF rendering is present;
  3. every custody entry in custody/entries.jsonl: its entry_hash is SHA-256 over the RFC 8785
     canonical JSON of all its other fields; entries with consecutive sequence numbers link
     (prev_hash = the previous entry's entry_hash; entry 1 links to the all-zero genesis hash);
  4. every certificate extends the custody entry it names (custody.sequence is included, is the
     start of an erase round for the same device, and its entry_hash is custody.previous_entry_sha256);
  5. everything manifest.json lists is present.
Exit status 0 when everything verifies, 1 otherwise (each problem on its own line).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
import uuid
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

GENESIS_HASH = "0" * 64
ENTRY_FIELDS = (
    "seq",
    "device_serial",
    "event",
    "from_state",
    "to_state",
    "actor",
    "from_custodian",
    "to_custodian",
    "location",
    "occurred_at",
    "evidence",
    "prev_hash",
)
ENVELOPE_FIELDS = {"format", "schema_version", "certificate", "signature"}
SIGNATURE_FIELDS = {"algorithm", "key_fingerprint", "digest_sha256", "value"}


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate member {key!r}")
        out[key] = value
    return out


def _load_json(text: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def fingerprint(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "SHA256:" + base64.b64encode(hashlib.sha256(raw).digest()).decode("ascii").rstrip("=")


def load_key(path: Path) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(path.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path} is not an Ed25519 public key")
    return key


def verify_certificate(envelope: Any, key: Ed25519PublicKey, key_fp: str) -> dict[str, Any]:
    """Return the signed certificate document, or raise ValueError with the reason."""
    if not isinstance(envelope, dict) or set(envelope) != ENVELOPE_FIELDS:
        raise ValueError("not a certificate envelope (unexpected or missing members)")
    cert, sig = envelope["certificate"], envelope["signature"]
    if not isinstance(cert, dict) or not isinstance(sig, dict) or set(sig) != SIGNATURE_FIELDS:
        raise ValueError("malformed certificate or signature member")
    expected = ("device-factory-certificate", 1, "Ed25519")
    if type(envelope["schema_version"]) is not int:  # 1.0 == 1 and True == 1 in Python
        raise ValueError("schema_version is not an integer")
    if (envelope["format"], envelope["schema_version"], sig["algorithm"]) != expected:
        raise ValueError("unsupported format, schema version or signature algorithm")
    if sig["key_fingerprint"] != key_fp:
        raise ValueError(f"signed by key {sig['key_fingerprint']}, not {key_fp}")
    payload = rfc8785.dumps(cert)
    if hashlib.sha256(payload).hexdigest() != sig["digest_sha256"]:
        raise ValueError("digest mismatch: certificate content changed")
    signature = base64.b64decode(sig["value"], validate=True)
    if base64.b64encode(signature).decode("ascii") != sig["value"]:
        raise ValueError("signature is not canonical base64")
    try:
        key.verify(signature, payload)
    except InvalidSignature:
        raise ValueError(f"signature invalid for key {key_fp}") from None
    if type(cert.get("schema_version")) is not int or cert["schema_version"] != 1:
        raise ValueError("certificate schema_version is not the integer 1")
    cert_id = cert.get("certificate_id")
    if not isinstance(cert_id, str) or str(uuid.UUID(cert_id)) != cert_id:  # uuid.UUID raises ValueError
        raise ValueError("certificate certificate_id is not a UUID")
    return cert


def entry_hash(entry: dict[str, Any]) -> str:
    return hashlib.sha256(rfc8785.dumps({name: entry[name] for name in ENTRY_FIELDS})).hexdigest()


def verify_bundle(root: Path, key_path: Path | None, published_fp: str | None) -> tuple[list[str], str]:
    """Every problem found in the unpacked bundle at ``root`` (none: it verifies), and a summary."""
    key = load_key(key_path or root / "keys" / "site-public-key.pem")
    key_fp = fingerprint(key)
    problems = _check_key(root, key_fp, published_fp)
    certificates = _check_certificates(root, key, key_fp, problems)
    entries = _check_entries(root, problems)
    problems += _check_links(certificates, entries)
    manifest = _load_json((root / "manifest.json").read_text(encoding="utf-8"))
    problems += _check_manifest(manifest, certificates, entries, problems)
    problems += _check_anchor(root, manifest, key, key_fp)
    summary = f"{len(certificates)} certificates and {len(entries)} custody entries, key {key_fp}"
    return problems, summary


def _check_key(root: Path, key_fp: str, published_fp: str | None) -> list[str]:
    problems = []
    bundled_fp_file = root / "keys" / "site-public-key.fingerprint.txt"
    if bundled_fp_file.exists() and bundled_fp_file.read_text().strip() != key_fp:
        problems.append(f"keys: the bundled fingerprint file does not match the key ({key_fp})")
    if published_fp is not None and published_fp.strip() != key_fp:
        problems.append(f"keys: the key's fingerprint {key_fp} is not the published {published_fp.strip()}")
    return problems


def _check_certificates(
    root: Path, key: Ed25519PublicKey, key_fp: str, problems: list[str]
) -> dict[str, dict[str, Any]]:
    """The certificates that verify, by id; a problem added to ``problems`` for each that does not."""
    certificates: dict[str, dict[str, Any]] = {}
    for path in sorted((root / "certificates").glob("*.json")):
        name = f"certificate {path.stem}"
        try:
            cert = verify_certificate(_load_json(path.read_text(encoding="utf-8")), key, key_fp)
        except (ValueError, TypeError, KeyError) as exc:
            problems.append(f"{name}: {exc}")
            continue
        if cert["certificate_id"] != path.stem:
            problems.append(f"{name}: the file holds certificate {cert['certificate_id']}")
        if not path.with_suffix(".pdf").is_file():
            problems.append(f"{name}: its PDF rendering {path.stem}.pdf is missing")
        certificates[cert["certificate_id"]] = cert
    return certificates


def _check_entries(root: Path, problems: list[str]) -> dict[int, dict[str, Any]]:
    """The well-formed custody entries, by sequence number, each hash and link checked."""
    entries: dict[int, dict[str, Any]] = {}
    jsonl = root / "custody" / "entries.jsonl"
    for number, line in enumerate(jsonl.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = _load_json(line)
            if not isinstance(entry, dict) or set(entry) != {*ENTRY_FIELDS, "entry_hash"}:
                raise ValueError("unexpected or missing fields")
            seq = entry["seq"]
            if not isinstance(seq, int) or seq < 1 or seq in entries:
                raise ValueError(f"bad or repeated sequence number {seq!r}")
        except (ValueError, TypeError) as exc:
            problems.append(f"custody/entries.jsonl line {number}: {exc}")
            continue
        if entry_hash(entry) != entry["entry_hash"]:
            problems.append(f"custody entry {seq}: entry_hash does not match the entry's fields")
        entries[seq] = entry
    for seq, entry in sorted(entries.items()):
        previous = GENESIS_HASH if seq == 1 else entries.get(seq - 1, {}).get("entry_hash")
        if previous is not None and entry["prev_hash"] != previous:
            problems.append(f"custody entry {seq}: prev_hash does not link to entry {seq - 1}")
    return entries


def _check_links(certificates: dict[str, dict[str, Any]], entries: dict[int, dict[str, Any]]) -> list[str]:
    """Each certificate must extend the custody entry that opened its erase round."""
    problems = []
    for cid, cert in sorted(certificates.items()):
        custody = cert.get("custody") or {}
        seq = custody.get("sequence")
        entry = entries.get(seq) if isinstance(seq, int) else None
        if entry is None:
            problems.append(f"certificate {cid}: the custody entry it names ({seq}) is not in the bundle")
            continue
        if entry["entry_hash"] != custody.get("previous_entry_sha256"):
            problems.append(f"certificate {cid}: custody entry {seq} has a different hash than the certificate names")
        if entry["event"] != "start_sanitise":
            problems.append(f"certificate {cid}: custody entry {seq} does not open an erase round")
        if entry["device_serial"] != (cert.get("device") or {}).get("serial_number"):
            problems.append(f"certificate {cid}: custody entry {seq} is for another device")
    return problems


def _check_manifest(
    manifest: dict[str, Any],
    certificates: dict[str, dict[str, Any]],
    entries: dict[int, dict[str, Any]],
    found: list[str],
) -> list[str]:
    """What the manifest lists must be present (a certificate already reported is not repeated)."""
    problems = []
    for item in manifest.get("certificates", []):
        if item["id"] not in certificates and not any(item["id"] in p for p in [*found, *problems]):
            problems.append(f"certificate {item['id']}: listed in the manifest but missing")
    for device in manifest.get("devices", []):
        for seq in device.get("entries", []):
            if seq not in entries:
                problems.append(f"custody entry {seq} (device {device['serial']}): listed in the manifest but missing")
    return problems


def _check_anchor(root: Path, manifest: dict[str, Any], key: Ed25519PublicKey, key_fp: str) -> list[str]:
    """ledger-anchor.json: the ledger head at export, signed; it must match the manifest's ledger_head."""
    path = root / "ledger-anchor.json"
    if not path.exists():
        return []
    try:
        anchor = _load_json(path.read_text(encoding="utf-8"))
        body = {k: anchor[k] for k in ("format", "site", "seq", "entry_hash", "signed_at", "key_fingerprint")}
        if body["format"] != "device-factory/ledger-anchor/1" or body["key_fingerprint"] != key_fp:
            raise ValueError("unsupported format or another key")
        key.verify(base64.b64decode(anchor["signature"], validate=True), rfc8785.dumps(body))
    except (ValueError, TypeError, KeyError, InvalidSignature) as exc:
        return [f"ledger-anchor.json: not a valid signed ledger head ({exc or type(exc).__name__})"]
    head = manifest.get("ledger_head") or {}
    if (head.get("seq"), head.get("entry_hash")) != (body["seq"], body["entry_hash"]):
        return ["ledger-anchor.json: the signed head differs from ledger_head in manifest.json"]
    return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify a Device Factory audit bundle offline.")
    parser.add_argument("bundle", nargs="?", default=str(Path(__file__).resolve().parent))
    parser.add_argument("--key", type=Path, help="public key PEM obtained from the site (default: the bundled one)")
    parser.add_argument("--fingerprint", help="the site's published key fingerprint, to compare")
    args = parser.parse_args(argv)
    try:
        problems, summary = verify_bundle(Path(args.bundle), args.key, args.fingerprint)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"FAIL: bundle unreadable: {exc}")
        return 1
    if problems:
        for problem in problems:
            print(f"FAIL: {problem}")
        print(f"{len(problems)} problem(s) in {summary}")
        return 1
    print(f"OK: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
