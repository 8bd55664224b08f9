"""The verification primitives an auditor runs offline: the one copy the factory and the
standalone verifiers share.

An auditor checks Device Factory's evidence with short scripts and without the project
installed: ``docs/verify_certificate_example.py``, ``docs/verify_ledger_proof.py`` and, inside an
audit bundle, ``verify_bundle.py`` (``factory/audit/``). What those scripts have in common with
each other and with the factory's own checks lives here, once, so they cannot drift apart:
strict JSON (no duplicate member names, no NaN or Infinity), the hashed fields of a custody entry,
the Ed25519 key fingerprint and signature check, RFC 9162's Merkle hashes with its inclusion
(2.1.3.2) and consistency (2.1.4.2) verification, and the strict check of a certificate envelope
(``verify_envelope``: the steps ``docs/certificate-format.md`` numbers 2 to 6).

Why a file of its own, and its rules:

* It imports the standard library and ``cryptography`` only, never this project, and is written
  for Python 3.9+; ``verify_envelope`` alone imports ``rfc8785``, when called, so
  ``verify_ledger_proof.py`` needs no more than ``cryptography``. The import contracts
  (``lint-imports``: imaging imports no factory) and ``tests/audit/test_standalone_checker.py``
  (no project import at all) hold it to that.
* The factory imports it as ``imaging.offline_verify`` (``imaging.certificate_envelope``,
  ``factory.kernel.ledger.hashing`` and ``merkle``).
* A standalone script imports it as the top-level module ``offline_verify``: from beside the
  script (an audit bundle carries a copy beside ``verify_bundle.py``; an auditor given a docs
  script is given this file with it) or, in a checkout of the repository, from ``imaging/``.
  Each error is a ``ValueError``, so a script's one ``except ValueError`` reports it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

# What a custody entry's hash covers. Version 1 (entries written before the Merkle tree): these;
# version 2 adds the device reference and the version itself (factory.kernel.ledger.hashing).
ENTRY_FIELDS: tuple[str, ...] = (
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
ENTRY_FIELDS_V2: tuple[str, ...] = (*ENTRY_FIELDS, "device_id", "hash_version")
# Version 3 adds the log the entry belongs to (one per site) and its position in that log.
ENTRY_FIELDS_V3: tuple[str, ...] = (*ENTRY_FIELDS_V2, "log", "log_seq")
ENTRY_FIELDS_BY_VERSION: dict[int, tuple[str, ...]] = {1: ENTRY_FIELDS, 2: ENTRY_FIELDS_V2, 3: ENTRY_FIELDS_V3}
LEGACY_GENESIS = "0" * 64  # what the first entry of the one log before per-site logs links to
FINGERPRINT_PREFIX = "SHA256:"
# A signed tree head: a custody log's size and Merkle root, signed (factory.kernel.ledger.heads).
# Format 1 predates per-site logs (its log is the one log there was); format 2 names its log.
TREE_HEAD_FORMAT_V1 = "device-factory/tree-head/1"
TREE_HEAD_FORMAT = "device-factory/tree-head/2"
TREE_HEAD_FIELDS_V1 = ("format", "site", "tree_size", "root_hash", "signed_at", "key_fingerprint")
TREE_HEAD_FIELDS = ("format", "log", "site", "tree_size", "root_hash", "signed_at", "key_fingerprint")
# A witness cosignature: another site's signature over a log's (size, root) (factory.kernel.ledger.cosign).
COSIGNATURE_FORMAT = "device-factory/cosignature/1"
COSIGNATURE_FIELDS = ("format", "log", "tree_size", "root_hash", "witness", "signed_at", "key_fingerprint")

# The certificate envelope (docs/certificate-format.md); version 1 certificates keep verifying, forever.
CERTIFICATE_FORMAT, SIGNATURE_ALGORITHM = "device-factory-certificate", "Ed25519"
SCHEMA_VERSIONS = (1, 2)
CERTIFICATE_TYPES = ("sanitisation", "destruction")  # schema version 2 names its type
ENVELOPE_FIELDS = ("format", "schema_version", "certificate", "signature")
SIGNATURE_FIELDS = ("algorithm", "key_fingerprint", "digest_sha256", "value")
HEX_SHA256 = re.compile(r"[0-9a-f]{64}")


class DuplicateMemberError(ValueError):
    """A JSON object naming one member twice: parsers disagree on which value it has."""

    def __init__(self, name: str) -> None:
        super().__init__(f"duplicate member {name!r}")
        self.name = name


class ProofError(ValueError):
    """A Merkle proof that does not verify, or a request for one that cannot exist."""


# --- strict JSON ----------------------------------------------------------------------------------


def unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads``'s ``object_pairs_hook``: an object, unless a member name comes twice.

    A text such as ``{"a":1,"a":2}`` would otherwise be signed or hashed as one value while
    another reader sees the other; callers word ``DuplicateMemberError`` as their own error.
    """
    members: dict[str, Any] = {}
    for name, value in pairs:
        if name in members:
            raise DuplicateMemberError(name)
        members[name] = value
    return members


def reject_constant(name: str) -> Any:
    """``json.loads``'s ``parse_constant``: NaN and Infinity are not JSON (RFC 8259)."""
    raise ValueError(f"non-finite number {name}")


def loads(text: str) -> Any:
    """Strict JSON: duplicate member names and NaN/Infinity refused; too deep a nesting a ValueError."""
    try:
        return json.loads(text, object_pairs_hook=unique_members, parse_constant=reject_constant)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


# --- Ed25519 keys and signatures --------------------------------------------------------------------


def fingerprint(key: Ed25519PublicKey) -> str:
    """``SHA256:`` and the unpadded base64 SHA-256 of the raw 32-byte public key."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return FINGERPRINT_PREFIX + base64.b64encode(hashlib.sha256(raw).digest()).decode("ascii").rstrip("=")


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM; ValueError for anything else."""
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def verify_signature(key: Ed25519PublicKey, signature: str, data: bytes, what: str) -> None:
    """``signature`` (base64) is ``key``'s over ``data``; ValueError naming ``what`` if not."""
    try:
        key.verify(base64.b64decode(signature, validate=True), data)
    except (InvalidSignature, ValueError):  # a binascii.Error (bad base64) is a ValueError
        raise ValueError(f"{what}: signature does not verify") from None


def genesis_hash(log: str) -> str:
    """What the first entry of ``log`` links to (from hash version 3): derived from the log's name,
    so two logs never share a ``prev_hash`` and an entry cannot be moved to the head of another log."""
    return hashlib.sha256(b"device-factory/custody-log/1\x00" + log.encode("utf-8")).hexdigest()


def tree_head_body(head: Any) -> dict[str, Any]:
    """What a tree head's signature covers (every member but ``signature``), once the head has
    exactly the members of its format (1 or 2) and an integer size; else ValueError."""
    fields = (
        TREE_HEAD_FIELDS_V1
        if isinstance(head, dict) and head.get("format") == TREE_HEAD_FORMAT_V1
        else TREE_HEAD_FIELDS
    )
    if not isinstance(head, dict) or set(head) != {*fields, "signature"}:
        raise ValueError("tree head has unexpected or missing fields")
    if head["format"] not in (TREE_HEAD_FORMAT, TREE_HEAD_FORMAT_V1) or type(head["tree_size"]) is not int:
        raise ValueError(f"not a {TREE_HEAD_FORMAT} with an integer size")
    return {k: head[k] for k in fields}


def head_log(head: dict[str, Any]) -> str:
    """The log a tree head is of: format 2 names it; a format 1 head is of its signing site's one log."""
    return str(head["log"] if "log" in head else head["site"])


def cosignature_body(cosig: Any) -> dict[str, Any]:
    """What a witness cosignature's signature covers, once it has exactly its members; else ValueError."""
    if not isinstance(cosig, dict) or set(cosig) != {*COSIGNATURE_FIELDS, "signature"}:
        raise ValueError("cosignature has unexpected or missing fields")
    if cosig["format"] != COSIGNATURE_FORMAT or type(cosig["tree_size"]) is not int:
        raise ValueError(f"not a {COSIGNATURE_FORMAT} with an integer size")
    return {k: cosig[k] for k in COSIGNATURE_FIELDS}


# --- RFC 9162 Merkle tree ---------------------------------------------------------------------------

HASH_SIZE = 32  # SHA-256: every leaf hash, proof hash and root is this long, or the proof is malformed
EMPTY_TREE_ROOT = hashlib.sha256(b"").digest()  # MTH({}) (RFC 9162 section 2.1.1)


def _check_sizes(hashes: Sequence[bytes], what: str) -> None:
    """Refuse a hash that is not 32 bytes: one of another length would let a proof split or join
    nodes (``SHA-256(0x01 || b"" || l || r)`` is the node of ``l`` and ``r``) and pass malformed."""
    for h in hashes:
        if len(h) != HASH_SIZE:
            raise ProofError(f"{what} of {len(h)} bytes, not a {HASH_SIZE}-byte SHA-256 hash")


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data): a leaf can never pass for an interior node."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _right_edge(fn: int, sn: int) -> tuple[int, int]:
    """Shift past the levels where node ``fn`` is a left child with no right sibling."""
    while fn and not fn & 1:
        fn, sn = fn >> 1, sn >> 1
    return fn, sn


def inclusion_root(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root the audit path ``proof`` leads to from ``leaf`` at ``index`` (RFC 9162 2.1.3.2)."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size} leaves")
    _check_sizes([leaf], "a leaf hash")
    _check_sizes(proof, "an audit path hash")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            fn, sn = _right_edge(fn, sn)
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """:raises ProofError: the proof does not lead from ``leaf`` to ``root``."""
    _check_sizes([root], "a root")
    if inclusion_root(index, size, leaf, proof) != root:
        raise ProofError("inclusion proof does not lead to the signed root")


def verify_consistency(old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> None:
    """RFC 9162 2.1.4.2. :raises ProofError: ``old_root`` is not a prefix of ``new_root`` by ``proof``."""
    if not 0 <= old <= new:
        raise ProofError(f"a tree of {old} leaves cannot be a prefix of one of {new}")
    _check_sizes([old_root, new_root], "a root")
    _check_sizes(proof, "a consistency proof hash")
    if old == 0 and old_root != EMPTY_TREE_ROOT:
        # The empty tree is a prefix of every tree, but only the empty tree's root is its root.
        raise ProofError("the root of an empty tree is SHA-256 of the empty string")
    if old == new:
        if proof or old_root != new_root:
            raise ProofError("equal sizes need an empty proof and equal roots")
        return
    if old == 0:
        if proof:
            raise ProofError("an empty tree needs an empty proof")
        return
    path = list(proof)
    if old & (old - 1) == 0:  # a power of two: the old root is itself the first node
        path.insert(0, old_root)
    if not path:
        raise ProofError("consistency proof is empty")
    fr, sr = _consistency_roots(old, new, path)
    if fr != old_root:
        raise ProofError("consistency proof does not lead to the old root")
    if sr != new_root:
        raise ProofError("consistency proof does not lead to the new root")


def _consistency_roots(old: int, new: int, path: list[bytes]) -> tuple[bytes, bytes]:
    """The old and new roots a consistency path leads to (the loop of RFC 9162 2.1.4.2)."""
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            fn, sn = _right_edge(fn, sn)
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    return fr, sr


# --- the certificate envelope, strictly (docs/certificate-format.md, steps 2 to 6) ---------------
# imaging.certificate_envelope.verify_certificate is the factory's own reading of the same steps,
# with a typed error per reason; tests/imaging/test_certificate_corpus.py holds the two to agreeing
# on several hundred forged variants.


def verify_envelope(envelope: dict[str, Any], key: Ed25519PublicKey) -> tuple[dict[str, Any], str]:
    """The signed certificate and the fingerprint of ``key``, which signed it; else ValueError.

    Strict on purpose: a lenient reader can be shown a file whose signed content verifies while
    what a person or another parser reads differs (an unsigned extra member, a version spelled
    ``1.0`` or ``true``). Needs ``rfc8785``, imported here so the rest of this file does without.
    """
    import rfc8785

    cert, sig = check_envelope(envelope)
    signer = fingerprint(key)
    if sig["key_fingerprint"] != signer:  # step 3
        raise ValueError(f"key fingerprint mismatch: certificate names {sig['key_fingerprint']!r}")
    if not HEX_SHA256.fullmatch(sig["digest_sha256"]):
        raise ValueError("'signature.digest_sha256' is not 64 lowercase hex digits")
    payload = rfc8785.dumps(cert)  # step 4: RFC 8785 canonical bytes, what was hashed and signed
    if not hmac.compare_digest(hashlib.sha256(payload).hexdigest(), sig["digest_sha256"]):
        raise ValueError("digest mismatch: certificate content changed")
    signature = base64.b64decode(sig["value"], validate=True)  # step 5
    if base64.b64encode(signature).decode() != sig["value"]:
        raise ValueError("signature is not canonical base64")
    try:
        key.verify(signature, payload)
    except InvalidSignature:
        raise ValueError(f"signature invalid for key {signer}") from None
    _check_signed_identity(cert, envelope["schema_version"])  # step 6
    return cert, signer


def check_envelope(envelope: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Step 2: exactly the envelope and signature members, each of its exact JSON type and value.

    ``type(x) is int`` and not ``x == 1``: in Python ``1.0 == 1`` and ``True == 1``.
    """
    exact_members(envelope, ENVELOPE_FIELDS, "")
    cert, sig = envelope["certificate"], envelope["signature"]
    if type(cert) is not dict or type(sig) is not dict:
        raise ValueError("'certificate' and 'signature' must be objects")
    exact_members(sig, SIGNATURE_FIELDS, "signature.")
    if type(envelope["format"]) is not str or type(envelope["schema_version"]) is not int:
        raise ValueError("'format' must be a string and 'schema_version' an integer")
    if any(type(sig[name]) is not str for name in SIGNATURE_FIELDS):
        raise ValueError("every signature field must be a string")
    supported = envelope["schema_version"] in SCHEMA_VERSIONS
    if (envelope["format"], sig["algorithm"]) != (CERTIFICATE_FORMAT, SIGNATURE_ALGORITHM) or not supported:
        raise ValueError("unsupported format, schema version or algorithm")
    return cert, sig


def exact_members(obj: Mapping[str, Any], fields: tuple[str, ...], prefix: str) -> None:
    """``obj`` has each of ``fields`` and nothing else (ValueError naming the first that differs)."""
    for name in fields:
        if name not in obj:
            raise ValueError(f"missing field '{prefix}{name}'")
    for name in obj:
        if name not in fields:  # not covered by the signature: a reader could be misled by it
            raise ValueError(f"unexpected field '{prefix}{name}'")


def _check_signed_identity(cert: dict[str, Any], envelope_version: int) -> None:
    """Step 6: the signed content's own version, id and (from version 2) type."""
    version, cert_id = cert.get("schema_version"), cert.get("certificate_id")
    if type(version) is not int or version != envelope_version:
        raise ValueError("certificate schema_version differs from the envelope's")
    if type(cert_id) is not str or not _is_uuid(cert_id):
        raise ValueError("'certificate.certificate_id' is not a UUID")
    kind = cert.get("certificate_type")
    if version >= 2 and (type(kind) is not str or kind not in CERTIFICATE_TYPES):
        raise ValueError("'certificate.certificate_type' is not a known type")


def _is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False
