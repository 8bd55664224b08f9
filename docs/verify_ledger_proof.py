"""Verify a Device Factory custody-log proof offline. Needs Python 3.9+ and `cryptography` only.

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
import base64
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

HEAD_FIELDS = ("format", "site", "tree_size", "root_hash", "signed_at", "key_fingerprint")


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate member {key!r}")
        out[key] = value
    return out


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def fingerprint(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "SHA256:" + base64.b64encode(_h(raw)).decode("ascii").rstrip("=")


def check_head(head: Any, key: Ed25519PublicKey) -> tuple[int, bytes]:
    """The signed size and root of a tree head, or ValueError."""
    if not isinstance(head, dict) or set(head) != {*HEAD_FIELDS, "signature"}:
        raise ValueError("tree head has unexpected or missing fields")
    if head["format"] != "device-factory/tree-head/1" or type(head["tree_size"]) is not int:
        raise ValueError("not a device-factory/tree-head/1 with an integer size")
    if head["key_fingerprint"] != fingerprint(key):
        raise ValueError(f"tree head signed by {head['key_fingerprint']}, not by the given key {fingerprint(key)}")
    body = {k: head[k] for k in HEAD_FIELDS}  # flat ASCII strings and integers: this is RFC 8785
    signed = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    try:
        key.verify(base64.b64decode(head["signature"], validate=True), signed)
    except InvalidSignature:
        raise ValueError(f"tree head of size {head['tree_size']}: signature does not verify") from None
    return head["tree_size"], bytes.fromhex(head["root_hash"])


def inclusion_root(index: int, size: int, leaf: bytes, path: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.3.2."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is outside a tree of {size}")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise ValueError("audit path too long")
        if fn & 1 or fn == sn:
            r = _h(b"\x01" + p + r)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = _h(b"\x01" + r + p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ValueError("audit path too short")
    return r


def consistent(old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes]) -> bool:
    """RFC 9162 section 2.1.4.2."""
    if old == new:
        return not proof and old_root == new_root
    if old == 0 or old > new:
        return old == 0 and not proof
    path = ([old_root] if old & (old - 1) == 0 else []) + proof
    if not path:
        return False
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = _h(b"\x01" + c + fr), _h(b"\x01" + c + sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = _h(b"\x01" + sr + c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root


def verify_inclusion(doc: dict[str, Any], key: Ed25519PublicKey) -> tuple[list[str], str]:
    size, root = check_head(doc["head"], key)
    problems = []
    for item in doc["entries"]:
        seq, data = item["seq"], item["entry"].encode("utf-8")
        entry = json.loads(data, object_pairs_hook=_unique)
        if entry.get("seq") != seq or item["leaf_index"] != seq - 1:
            problems.append(f"custody entry {seq}: sequence number and leaf position disagree")
        elif _h(data).hex() != item["entry_hash"]:
            problems.append(f"custody entry {seq}: entry_hash is not the SHA-256 of its bytes")
        elif inclusion_root(seq - 1, size, _h(b"\x00" + data), [bytes.fromhex(p) for p in item["audit_path"]]) != root:
            problems.append(f"custody entry {seq}: not in the log the signed head commits to")
    return problems, f"{len(doc['entries'])} custody entries in the signed log of {size} entries"


def verify_consistency(doc: dict[str, Any], key: Ed25519PublicKey) -> tuple[list[str], str]:
    old, old_root = check_head(doc["old"], key)
    new, new_root = check_head(doc["new"], key)
    if not consistent(old, new, old_root, new_root, [bytes.fromhex(p) for p in doc["proof"]]):
        return [f"the signed log of {old} entries is not a prefix of the signed log of {new}"], ""
    return [], f"the signed log of {old} entries is a prefix of the signed log of {new}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify a custody-log inclusion or consistency proof offline.")
    parser.add_argument("proof", type=Path)
    parser.add_argument("--key", type=Path, required=True, help="the site's Ed25519 public key (PEM)")
    args = parser.parse_args(argv)
    try:
        key = serialization.load_pem_public_key(args.key.read_bytes())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("the key is not an Ed25519 public key")
        doc = json.loads(args.proof.read_text(encoding="utf-8"), object_pairs_hook=_unique)
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
