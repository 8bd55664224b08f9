"""Verify a Device Factory audit bundle offline. Needs Python 3.9+, `cryptography` and `rfc8785`.

Usage (from the unpacked bundle directory, or naming it):
    python verify_bundle.py [BUNDLE_DIR] [--key PUBLIC_KEY.pem] [--fingerprint SHA256:...]

Checks, and names every failure:
  1. the trusted key (--fingerprint, the value published by the site; or --key obtained through
     another channel; else the bundle's own) signs keys/site-keys.json or endorses the key that
     does; every later signature must be by a key in that list valid at the time it states;
  2. manifest.json is signed (manifest.sig.json) and lists every other file with its SHA-256;
  3. every certificate in certificates/*.json: format, key fingerprint, SHA-256 digest of the
     RFC 8785 canonical certificate, Ed25519 signature; and that its PDF rendering is present;
  4. the signed tree heads (ledger/tree-head.json and ledger/tree-heads.json, one per site's log
     the entries are in, also in the manifest) and every custody entry in custody/entries.jsonl:
     its entry_hash is SHA-256 over the RFC 8785 canonical JSON of its hashed fields, its
     audit_path leads from its RFC 9162 leaf to the root of its log's head (in_log; a version 3
     entry names its log itself) at its position - 1; entries at consecutive positions of a log
     link (prev_hash), the first to the log's genesis;
  5. every certificate extends the custody entry it names (custody.sequence is included, is the
     start of an erase round for the same device, and its entry_hash is custody.previous_entry_sha256);
  6. everything manifest.json lists is present, and nothing else.
Exit status 0 when everything verifies, 1 otherwise (each problem on its own line).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

sys.dont_write_bytecode = True  # leave the unpacked bundle exactly as it was
# Its companions: verify_bundle_keys.py and offline_verify.py, shipped beside it; in the
# repository offline_verify.py is imaging/'s (the same file: see its docstring).
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.append(str(Path(__file__).resolve().parent.parent.parent / "imaging"))
from offline_verify import (  # noqa: E402
    ENTRY_FIELDS,  # noqa: F401 - the hashed fields by version, named here for readers of this checker
    ENTRY_FIELDS_BY_VERSION,
    ENTRY_FIELDS_V2,  # noqa: F401
    ENTRY_FIELDS_V3,  # noqa: F401
    LEGACY_GENESIS,
    fingerprint,
    genesis_hash,
    head_log,
    inclusion_root,
    leaf_hash,
    load_public_key,
    loads,
    tree_head_body,
    verify_envelope,
    verify_signature,
)
from verify_bundle_keys import Keyring, load_keyring  # noqa: E402

GENESIS_HASH = LEGACY_GENESIS  # what the first entry of the log from before per-site logs links to
UNSIGNED_FILES = {"manifest.json", "manifest.sig.json"}


def load_key(path: Path) -> Ed25519PublicKey:
    try:
        return load_public_key(path.read_bytes())
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def verify_certificate(envelope: Any, key: Ed25519PublicKey) -> dict[str, Any]:
    """Return the signed certificate document, or raise ValueError with the reason: exactly the
    checks of docs/verify_certificate_example.py (offline_verify.verify_envelope)."""
    if not isinstance(envelope, dict):
        raise ValueError("not a certificate envelope (not a JSON object)")
    return verify_envelope(envelope, key)[0]


def entry_bytes(entry: dict[str, Any]) -> bytes:
    """The entry's canonical bytes: what its hash covers, and its Merkle leaf (by hash version)."""
    fields = ENTRY_FIELDS_BY_VERSION[entry.get("hash_version", 1)]
    return rfc8785.dumps({name: entry[name] for name in fields})


def entry_hash(entry: dict[str, Any]) -> str:
    return hashlib.sha256(entry_bytes(entry)).hexdigest()


def verify_bundle(root: Path, key_path: Path | None, published_fp: str | None) -> tuple[list[str], str]:
    """Every problem found in the unpacked bundle at ``root`` (none: it verifies), and a summary."""
    key = load_key(key_path or root / "keys" / "site-public-key.pem")
    key_fp = fingerprint(key)
    problems = _check_key(root, key_fp, published_fp)
    keyring = load_keyring(root, published_fp.strip() if published_fp else key_fp, problems)
    manifest = loads((root / "manifest.json").read_text(encoding="utf-8"))
    problems += _check_manifest_signature(root, manifest, keyring)
    head = _check_head(root, manifest, keyring, problems)
    heads = _check_heads(root, manifest, head, keyring, problems)
    certificates = _check_certificates(root, keyring, problems)
    entries = _check_entries(root, heads, problems)
    problems += _check_links(certificates, entries)
    problems += _check_manifest(manifest, certificates, entries, problems)
    problems += _check_anchor(root, manifest, keyring)
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


def _check_manifest_signature(root: Path, manifest: dict[str, Any], keyring: Keyring) -> list[str]:
    """The manifest is signed, and lists exactly the other files, each with its SHA-256."""
    try:
        signed = loads((root / "manifest.sig.json").read_text(encoding="utf-8"))
        key = keyring.key(signed["key_fingerprint"], manifest["exported_at"])
        verify_signature(key, signed["signature"], rfc8785.dumps(manifest), "manifest.json")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [f"manifest.json: not signed by a site key ({exc})"]
    listed = manifest.get("files") or {}
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    present -= UNSIGNED_FILES
    problems = [f"{name}: not listed in the signed manifest" for name in sorted(present - set(listed))]
    for name, digest in sorted(listed.items()):
        path = root / name
        if not path.is_file():
            problems.append(f"{name}: listed in the signed manifest but missing")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            problems.append(f"{name}: differs from the signed manifest")
    return problems


def _check_head(root: Path, manifest: dict[str, Any], keyring: Keyring, problems: list[str]) -> dict[str, Any] | None:
    """The signed tree head (in the manifest and ledger/tree-head.json), or None with a problem."""
    try:
        head = manifest["tree_head"]
        if loads((root / "ledger" / "tree-head.json").read_text(encoding="utf-8")) != head:
            raise ValueError("ledger/tree-head.json differs from the manifest's")
        body = tree_head_body(head)
        verify_signature(
            keyring.key(head["key_fingerprint"], head["signed_at"]), head["signature"], rfc8785.dumps(body), "tree head"
        )
        return head
    except (OSError, ValueError, KeyError, TypeError) as exc:
        problems.append(f"ledger/tree-head.json: no valid signed tree head ({exc})")
        return None


def _check_certificates(root: Path, keyring: Keyring, problems: list[str]) -> dict[str, dict[str, Any]]:
    """The certificates that verify, by id; a problem added to ``problems`` for each that does not."""
    certificates: dict[str, dict[str, Any]] = {}
    for path in sorted((root / "certificates").glob("*.json")):
        name = f"certificate {path.stem}"
        try:
            envelope = loads(path.read_text(encoding="utf-8"))
            fp = envelope["signature"]["key_fingerprint"]
            key = keyring.key(fp, envelope["certificate"]["issued_at"])
            cert = verify_certificate(envelope, key)
        except (ValueError, TypeError, KeyError) as exc:
            problems.append(f"{name}: {exc}")
            continue
        if cert["certificate_id"] != path.stem:
            problems.append(f"{name}: the file holds certificate {cert['certificate_id']}")
        if not path.with_suffix(".pdf").is_file():
            problems.append(f"{name}: its PDF rendering {path.stem}.pdf is missing")
        certificates[cert["certificate_id"]] = cert
    return certificates


def _check_heads(
    root: Path, manifest: dict[str, Any], own: dict[str, Any] | None, keyring: Keyring, problems: list[str]
) -> dict[str, dict[str, Any]]:
    """The signed head of each log, by log: ledger/tree-heads.json (as in the manifest), each
    signed by a key in the site key list; a bundle of version 2 has only the one head."""
    if "tree_heads" not in manifest:
        return {head_log(own): own} if own is not None else {}
    heads: dict[str, dict[str, Any]] = {}
    try:
        listed = manifest["tree_heads"]
        if loads((root / "ledger" / "tree-heads.json").read_text(encoding="utf-8")) != listed:
            raise ValueError("ledger/tree-heads.json differs from the manifest's")
        if own is not None and own not in listed:
            raise ValueError("the site's own head is not among them")
        for head in listed:
            body = tree_head_body(head)
            key = keyring.key(head["key_fingerprint"], head["signed_at"])
            verify_signature(key, head["signature"], rfc8785.dumps(body), f"tree head of log {head_log(head)}")
            if head_log(head) in heads:
                raise ValueError(f"two heads of log {head_log(head)}")
            heads[head_log(head)] = head
    except (OSError, ValueError, KeyError, TypeError) as exc:
        problems.append(f"ledger/tree-heads.json: not valid signed tree heads ({exc})")
        return {}
    return heads


def _read_entry(line: str, seen: dict[int, dict[str, Any]]) -> dict[str, Any]:
    entry = loads(line)
    version = entry.get("hash_version", 1) if isinstance(entry, dict) else None
    fields = ENTRY_FIELDS_BY_VERSION.get(version, ()) if type(version) is int else ()
    if not fields or set(entry) - {"in_log"} != {*fields, "entry_hash", "audit_path"}:
        raise ValueError("unexpected or missing fields")
    seq = entry["seq"]
    if type(seq) is not int or seq < 1 or seq in seen:
        raise ValueError(f"bad or repeated sequence number {seq!r}")
    return entry


def _place(entry: dict[str, Any], heads: dict[str, dict[str, Any]]) -> tuple[str, int]:
    """The log an entry is proved in and its position there; ValueError if it names another log."""
    log = entry.get("in_log", next(iter(heads), ""))
    if entry["hash_version"] >= 3 and entry["log"] != log:
        raise ValueError(f"it is of log {entry['log']!r}, but proved in log {log!r}")
    position = entry["log_seq"] if entry["hash_version"] >= 3 else entry["seq"]
    if type(position) is not int or position < 1:
        raise ValueError(f"bad position {position!r}")
    return log, position


def _check_entries(root: Path, heads: dict[str, dict[str, Any]], problems: list[str]) -> dict[int, dict[str, Any]]:
    """The well-formed custody entries, by sequence number, each hash, proof and link checked."""
    entries: dict[int, dict[str, Any]] = {}
    placed: dict[tuple[str, int], dict[str, Any]] = {}
    jsonl = root / "custody" / "entries.jsonl"
    for number, line in enumerate(jsonl.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = _read_entry(line, entries)
            data = entry_bytes(entry)
        except (ValueError, TypeError) as exc:
            problems.append(f"custody/entries.jsonl line {number}: {exc}")
            continue
        seq = entry["seq"]
        if hashlib.sha256(data).hexdigest() != entry["entry_hash"]:
            problems.append(f"custody entry {seq}: entry_hash does not match the entry's fields")
        elif heads:
            try:
                log, position = _place(entry, heads)
                placed[(log, position)] = entry
                _prove(entry, data, heads.get(log), log, position)
            except (ValueError, TypeError, KeyError) as exc:
                problems.append(f"custody entry {seq}: not in the signed log ({exc})")
        entries[seq] = entry
    problems += _check_chain_links(placed)
    return entries


def _prove(entry: dict[str, Any], data: bytes, head: dict[str, Any] | None, log: str, position: int) -> None:
    if head is None:
        raise ValueError(f"the bundle has no signed head of log {log!r}")
    path = [bytes.fromhex(p) for p in entry["audit_path"]]
    if inclusion_root(position - 1, head["tree_size"], leaf_hash(data), path).hex() != head["root_hash"]:
        raise ValueError("its audit path does not lead to the signed root")


def _check_chain_links(placed: dict[tuple[str, int], dict[str, Any]]) -> list[str]:
    """Entries at consecutive positions of one log link; a log's first entry links to its genesis."""
    problems = []
    for (log, position), entry in sorted(placed.items()):
        if position == 1:
            previous = GENESIS_HASH if entry["hash_version"] < 3 else genesis_hash(log)
        else:
            previous = placed.get((log, position - 1), {}).get("entry_hash")
        if previous is not None and entry["prev_hash"] != previous:
            problems.append(f"custody entry {entry['seq']}: prev_hash does not link to the entry before it in its log")
    return problems


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
    by_device = set()
    for device in manifest.get("devices", []):
        for seq in device.get("entries", []):
            by_device.add(seq)
            if seq not in entries:
                problems.append(f"custody entry {seq} (device {device['serial']}): listed in the manifest but missing")
    listed = set(manifest.get("entries", []))
    problems += [f"custody entry {s}: not listed in the signed manifest" for s in sorted(set(entries) - listed)]
    problems += [
        f"custody entry {s}: listed in the manifest but missing" for s in sorted(listed - set(entries) - by_device)
    ]
    return problems


def _check_anchor(root: Path, manifest: dict[str, Any], keyring: Keyring) -> list[str]:
    """ledger-anchor.json: the chain head at export, signed; it must match the manifest's ledger_head."""
    path = root / "ledger-anchor.json"
    if not path.exists():
        return ["ledger-anchor.json: missing"]
    try:
        anchor = loads(path.read_text(encoding="utf-8"))
        body = {k: anchor[k] for k in ("format", "site", "seq", "entry_hash", "signed_at", "key_fingerprint")}
        if body["format"] != "device-factory/ledger-anchor/1":
            raise ValueError("unsupported format")
        key = keyring.key(body["key_fingerprint"], body["signed_at"])
        verify_signature(key, anchor["signature"], rfc8785.dumps(body), "ledger-anchor.json")
    except (ValueError, TypeError, KeyError) as exc:
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
