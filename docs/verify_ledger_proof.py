"""Verify a Device Factory custody-log proof offline. Needs Python 3.9+ and `cryptography` only.

It needs one more file: offline_verify.py, the verification primitives it shares with the factory
(strict JSON, the key fingerprint, RFC 9162 hashing and proof checks). Keep it beside this script;
in a checkout of the repository it is imaging/offline_verify.py, found there; an audit bundle
carries a copy beside its verify_bundle.py.

Usage:
    python verify_ledger_proof.py PROOF.json --key SITE_PUBLIC_KEY.pem [--key OTHER_SITE.pem ...]

PROOF.json comes from `factory ledger prove SERIAL|SEQ` (inclusion: these entries are in the log
the signed tree head commits to) or `factory ledger consistency OLD NEW` (the older signed head's
log is a prefix of the newer one's). The key is the site's Ed25519 public key that signed the
head(s), obtained from the site's signed key list or through another channel. When several sites
share a database each has its own log; a device that moved between sites has entries in several
logs, and its proof is a set with one inclusion proof per log: give each of those sites' keys.
Each entry of hash version 3 names its log and position; its leaf index is that position - 1 in
the tree of the log its head names. Hashing follows
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


def check_head(head: Any, keys: list[Ed25519PublicKey]) -> tuple[int, bytes]:
    """The signed size and root of a tree head signed by one of ``keys``, or ValueError."""
    body = offline_verify.tree_head_body(head)
    by_fp = {offline_verify.fingerprint(k): k for k in keys}
    key = by_fp.get(head["key_fingerprint"])
    if key is None:
        raise ValueError(f"tree head signed by {head['key_fingerprint']}, not by a given key {sorted(by_fp)}")
    # Flat ASCII strings and integers: their sorted compact JSON is their RFC 8785 form.
    signed = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    offline_verify.verify_signature(key, head["signature"], signed, f"tree head of size {head['tree_size']}")
    return head["tree_size"], bytes.fromhex(head["root_hash"])


def verify_inclusion(doc: dict[str, Any], keys: list[Ed25519PublicKey]) -> tuple[list[str], str]:
    size, root = check_head(doc["head"], keys)
    log = offline_verify.head_log(doc["head"])
    problems = []
    for item in doc["entries"]:
        seq, data = item["seq"], item["entry"].encode("utf-8")
        entry = offline_verify.loads(data)
        # Version 3 entries name their log and position; earlier ones were the one log, by seq.
        position = entry.get("log_seq", seq)
        if type(position) is not int or entry.get("seq") != seq or item["leaf_index"] != position - 1:
            problems.append(f"custody entry {seq}: sequence number and leaf position disagree")
        elif entry.get("log", log) != log:
            problems.append(f"custody entry {seq}: of log {entry.get('log')!r}, not of the head's log {log!r}")
        elif hashlib.sha256(data).hexdigest() != item["entry_hash"]:
            problems.append(f"custody entry {seq}: entry_hash is not the SHA-256 of its bytes")
        elif not _in_signed_log(position - 1, size, root, data, item["audit_path"]):  # its leaf in its log
            problems.append(f"custody entry {seq}: not in the log the signed head commits to")
    return problems, f"{len(doc['entries'])} custody entries in the signed log {log!r} of {size} entries"


def verify_inclusion_set(doc: dict[str, Any], keys: list[Ed25519PublicKey]) -> tuple[list[str], str]:
    """One inclusion proof per log, each checked as one; every log at most once."""
    problems, summaries, logs = [], [], []
    for proof in doc["proofs"]:
        if proof.get("format") != "device-factory/ledger-inclusion/1":
            raise ValueError("a proof set holds inclusion proofs only")
        logs.append(offline_verify.head_log(proof["head"]))
        found, summary = verify_inclusion(proof, keys)
        problems += found
        summaries.append(summary)
    if len(set(logs)) != len(logs):
        problems.append("the proof set names one log twice")
    return problems, "; ".join(summaries)


def _in_signed_log(index: int, size: int, root: bytes, data: bytes, audit_path: list[str]) -> bool:
    """RFC 9162 2.1.3.2: the audit path leads from the entry's leaf to the signed root."""
    path = [bytes.fromhex(p) for p in audit_path]
    try:
        return offline_verify.inclusion_root(index, size, offline_verify.leaf_hash(data), path) == root
    except offline_verify.ProofError:  # a leaf past the head, a path too long or short, a hash not 32 bytes
        return False


def verify_consistency(doc: dict[str, Any], keys: list[Ed25519PublicKey]) -> tuple[list[str], str]:
    old, old_root = check_head(doc["old"], keys)
    new, new_root = check_head(doc["new"], keys)
    if offline_verify.head_log(doc["old"]) != offline_verify.head_log(doc["new"]):
        return ["the two signed heads are of different logs"], ""
    try:
        offline_verify.verify_consistency(old, new, old_root, new_root, [bytes.fromhex(p) for p in doc["proof"]])
    except offline_verify.ProofError as exc:
        return [f"the signed log of {old} entries is not a prefix of the signed log of {new} ({exc})"], ""
    return [], f"the signed log of {old} entries is a prefix of the signed log of {new}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify a custody-log inclusion or consistency proof offline.")
    parser.add_argument("proof", type=Path)
    parser.add_argument(
        "--key", type=Path, required=True, action="append", help="a site's Ed25519 public key (PEM), repeatable"
    )
    args = parser.parse_args(argv)
    try:
        keys = [offline_verify.load_public_key(path.read_bytes()) for path in args.key]
        doc = offline_verify.loads(args.proof.read_text(encoding="utf-8"))
        check = {"device-factory/ledger-inclusion/1": verify_inclusion,
                 "device-factory/ledger-inclusion-set/1": verify_inclusion_set,
                 "device-factory/ledger-consistency/1": verify_consistency}.get(doc.get("format"))  # fmt: skip
        if check is None:
            raise ValueError("not a device-factory inclusion or consistency proof")
        problems, summary = check(doc, keys)
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
