"""Verify a Device Factory custody-log proof offline. Needs Python 3.9+ and `cryptography` only.

It needs one more file: offline_verify.py, the verification primitives it shares with the factory
(strict JSON, the key fingerprint, RFC 9162 hashing and proof checks). Keep it beside this script;
in a checkout of the repository it is imaging/offline_verify.py, found there; an audit bundle
carries a copy beside its verify_bundle.py.

Usage:
    python verify_ledger_proof.py PROOF.json --key SITE_PUBLIC_KEY.pem

PROOF.json comes from `factory ledger prove SERIAL|SEQ` (inclusion: these entries are in the log
the signed tree head commits to) or `factory ledger consistency OLD NEW` (the older signed head's
log is a prefix of the newer one's). The key is the site's Ed25519 public key that signed the
head(s), obtained from the site's signed key list or through another channel. Hashing follows
RFC 9162: a leaf is SHA-256(0x00 || entry bytes), a node SHA-256(0x01 || left || right).
Prints "OK: ..." and exits 0, or "FAIL: ..." lines and exits 1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

sys.path.insert(0, str(Path(__file__).resolve().parent))  # offline_verify.py beside this script, else
sys.path.append(str(Path(__file__).resolve().parent.parent / "imaging"))  # the repository's copy
try:
    import offline_verify  # the primitives the factory checks with too
except ModuleNotFoundError:
    sys.exit("offline_verify.py is missing: keep it beside this script (in the repository: imaging/)")


def check_head(head: Any, key: Ed25519PublicKey) -> tuple[int, bytes]:
    """The signed size and root of a tree head, or ValueError."""
    body = offline_verify.tree_head_body(head)
    expected = offline_verify.fingerprint(key)
    if head["key_fingerprint"] != expected:
        raise ValueError(f"tree head signed by {head['key_fingerprint']}, not by the given key {expected}")
    # Flat ASCII strings and integers: their sorted compact JSON is their RFC 8785 form.
    signed = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    offline_verify.verify_signature(key, head["signature"], signed, f"tree head of size {head['tree_size']}")
    return head["tree_size"], bytes.fromhex(head["root_hash"])


def verify_inclusion(doc: dict[str, Any], key: Ed25519PublicKey) -> tuple[list[str], str]:
    size, root = check_head(doc["head"], key)
    problems = []
    for item in doc["entries"]:
        seq, data = item["seq"], item["entry"].encode("utf-8")
        entry = offline_verify.loads(data)
        if entry.get("seq") != seq or item["leaf_index"] != seq - 1:
            problems.append(f"custody entry {seq}: sequence number and leaf position disagree")
        elif hashlib.sha256(data).hexdigest() != item["entry_hash"]:
            problems.append(f"custody entry {seq}: entry_hash is not the SHA-256 of its bytes")
        elif not _in_signed_log(seq - 1, size, root, data, item["audit_path"]):
            problems.append(f"custody entry {seq}: not in the log the signed head commits to")
    return problems, f"{len(doc['entries'])} custody entries in the signed log of {size} entries"


def _in_signed_log(index: int, size: int, root: bytes, data: bytes, audit_path: list[str]) -> bool:
    """RFC 9162 2.1.3.2: the audit path leads from the entry's leaf to the signed root."""
    path = [bytes.fromhex(p) for p in audit_path]
    return offline_verify.inclusion_root(index, size, offline_verify.leaf_hash(data), path) == root


def verify_consistency(doc: dict[str, Any], key: Ed25519PublicKey) -> tuple[list[str], str]:
    old, old_root = check_head(doc["old"], key)
    new, new_root = check_head(doc["new"], key)
    try:
        offline_verify.verify_consistency(old, new, old_root, new_root, [bytes.fromhex(p) for p in doc["proof"]])
    except offline_verify.ProofError as exc:
        return [f"the signed log of {old} entries is not a prefix of the signed log of {new} ({exc})"], ""
    return [], f"the signed log of {old} entries is a prefix of the signed log of {new}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify a custody-log inclusion or consistency proof offline.")
    parser.add_argument("proof", type=Path)
    parser.add_argument("--key", type=Path, required=True, help="the site's Ed25519 public key (PEM)")
    args = parser.parse_args(argv)
    try:
        key = offline_verify.load_public_key(args.key.read_bytes())
        doc = offline_verify.loads(args.proof.read_text(encoding="utf-8"))
        check = {"device-factory/ledger-inclusion/1": verify_inclusion,
                 "device-factory/ledger-consistency/1": verify_consistency}.get(doc.get("format"))  # fmt: skip
        if check is None:
            raise ValueError("not a device-factory inclusion or consistency proof")
        problems, summary = check(doc, key)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        print(f"FAIL: proof unreadable or unsigned: {exc}")
        return 1
    for problem in problems:
        print(f"FAIL: {problem}")
    if not problems:
        print(f"OK: {summary}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
