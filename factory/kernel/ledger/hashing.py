"""What exactly an entry hash covers, per version of the canonical form.

Version 1 (entries written before the Merkle tree): every field but ``device_id`` and the hash.
Version 2: the same plus ``device_id`` (the device reference, so an entry cannot be moved to
another device) and ``hash_version`` itself. An entry's *canonical bytes* are the RFC 8785 JSON
of its hashed fields; ``entry_hash`` is their SHA-256 and its Merkle leaf is those same bytes
(``merkle.leaf_hash``). Stored evidence must parse without duplicate member names: a text such as
``{"reason":"a","reason":"b"}`` would otherwise hash as one value while SQL reads the other.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import orjson
import rfc8785

from factory.kernel.canonical import canonical_bytes
from factory.kernel.errors import InvalidInput
from factory.kernel.ledger.verify_rows import ROW_COLUMNS
from imaging.offline_verify import (
    ENTRY_FIELDS,
    ENTRY_FIELDS_BY_VERSION,
    ENTRY_FIELDS_V2,
    ENTRY_FIELDS_V3,
    DuplicateMemberError,
    unique_members,
)

# The one list, shared with the standalone verifiers (an audit bundle's verify_bundle.py hashes the same).
HASHED_FIELDS: tuple[str, ...] = ENTRY_FIELDS
HASHED_FIELDS_V2: tuple[str, ...] = ENTRY_FIELDS_V2
HASHED_FIELDS_V3: tuple[str, ...] = ENTRY_FIELDS_V3  # version 3 adds the entry's log and position in it
CURRENT_VERSION = 3
# What ``verify`` selects per row, in this order (verify_rows.ROW_COLUMNS); ``row_bytes`` and
# ``spliced_bytes`` read it. The light module names the columns per version (VERSION_COLUMNS);
# tests/kernel/test_ledger_verify_fast.py checks they are these lists.
_SORT = orjson.OPT_SORT_KEYS
_FRAGMENT = orjson.Fragment


class EvidenceError(InvalidInput, ValueError):
    """Evidence text that is not one JSON object with unique member names."""


def parse_evidence(text: str) -> dict[str, Any]:
    """The evidence object, refusing duplicate member names and anything but one JSON object."""
    try:
        value = json.loads(text, object_pairs_hook=unique_members)
    except DuplicateMemberError as exc:
        raise EvidenceError(f"evidence has the member {exc.name!r} twice") from None
    except (ValueError, RecursionError) as exc:
        raise EvidenceError(f"evidence is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise EvidenceError("evidence is not a JSON object")
    return value


def evidence_text(evidence: dict[str, Any]) -> str:
    """Evidence is stored as its canonical JSON text, so storage round trips are exact.

    :raises EvidenceError: not a JSON object of string-named members.
    """
    if not isinstance(evidence, dict) or not all(type(k) is str for k in evidence):
        raise EvidenceError("evidence must be a JSON object with string member names")
    try:
        text = canonical_bytes(evidence).decode("utf-8")
        # The entry's hash is taken over the text parsed again (entry_bytes), as every verifier
        # does: a double of 2**53 or more is written as an integer beyond 2**53 - 1, which no
        # RFC 8785 canonicaliser takes back. Refused here, with the reason, not at the hash.
        canonical_bytes(parse_evidence(text))
    except rfc8785.CanonicalizationError as exc:
        raise EvidenceError(f"evidence cannot be stored exactly as RFC 8785 JSON: {exc}") from None
    return text


def fields_of(row: dict[str, Any]) -> tuple[str, ...]:
    version = row.get("hash_version") or 1
    if version not in ENTRY_FIELDS_BY_VERSION:
        raise EvidenceError(f"unknown hash_version {version!r}")
    return ENTRY_FIELDS_BY_VERSION[version]


def hashed_row(entry: Any) -> dict[str, Any]:
    """The fields an entry object's hash covers (by its version), evidence as the stored text."""
    version = getattr(entry, "hash_version", None) or 1
    return {name: getattr(entry, name) for name in fields_of({"hash_version": version})}


def entry_document(row: dict[str, Any]) -> dict[str, Any]:
    doc = {name: row[name] for name in fields_of(row)}
    doc["evidence"] = parse_evidence(row["evidence"])
    return doc


def entry_bytes(row: dict[str, Any]) -> bytes:
    """The entry's canonical bytes: what its hash covers and what its Merkle leaf is."""
    return canonical_bytes(entry_document(row))


def entry_hash(row: dict[str, Any]) -> str:
    return hashlib.sha256(entry_bytes(row)).hexdigest()


def hash_document(doc: dict[str, Any]) -> str:
    """SHA-256 of an entry document (evidence as an object), for callers that build documents."""
    return hashlib.sha256(canonical_bytes(doc)).hexdigest()


def row_bytes(values: Sequence[Any]) -> bytes:
    """``entry_bytes`` of a row given in ``ROW_COLUMNS`` order (the general path of verify).

    :raises EvidenceError: evidence with duplicate members, not JSON, or an unknown version.
    """
    return entry_bytes(dict(zip(ROW_COLUMNS, values, strict=False)))


def spliced_bytes(values: Sequence[Any]) -> bytes | None:
    """The canonical bytes assuming the stored evidence text is already canonical: the fast path.

    Keys are sorted by orjson (all ASCII: RFC 8785's order) and the evidence column is spliced in verbatim.
    The evidence text is first checked to be exactly orjson's sorted form of what it parses to,
    which a text with a duplicate member, extra whitespace or trailing text never is; then a match
    of the SHA-256 with the stored hash is conclusive. A mismatch is not: the caller re-hashes
    through ``row_bytes``, which decides. None when the fast path does not apply.
    """
    version, evidence = values[13], values[10]
    try:
        if version not in (1, 2, 3) or orjson.dumps(orjson.loads(evidence), option=_SORT) != evidence.encode("utf-8"):
            return None
        doc = dict(zip(HASHED_FIELDS, values[:12], strict=True))
        doc["evidence"] = _FRAGMENT(evidence)
        if version >= 2:
            doc.update(device_id=values[12], hash_version=version)
        if version == 3:
            doc.update(log=values[15], log_seq=values[16])
        # orjson sorts by code point and RFC 8785 by UTF-16 unit: the same order for these ASCII names.
        return orjson.dumps(doc, option=_SORT)
    except (orjson.JSONDecodeError, orjson.JSONEncodeError, TypeError, AttributeError):
        return None


def canonical_or_reason(values: Sequence[Any]) -> bytes | str:
    """The row's canonical bytes if its stored hash matches them, else why not (the per-row path of verify)."""
    fast = spliced_bytes(values)
    if fast is not None and hashlib.sha256(fast).hexdigest() == values[14]:
        return fast
    try:
        slow = row_bytes(values)
    except (EvidenceError, ValueError, TypeError) as exc:
        return f"unreadable entry: {exc}"
    if hashlib.sha256(slow).hexdigest() != values[14]:
        return "entry_hash does not match the entry's fields"
    return slow
