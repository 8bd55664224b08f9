"""What exactly an entry hash covers: every field of the entry except the hash itself."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import orjson
import rfc8785

from factory.kernel.canonical import canonical_bytes, in_fast_domain

HASHED_FIELDS: tuple[str, ...] = (
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
_SCALARS = HASHED_FIELDS[:-2] + HASHED_FIELDS[-1:]  # all but evidence
_SORT = orjson.OPT_SORT_KEYS
_MAX_SEQ = 2**53 - 1


def evidence_text(evidence: dict[str, Any]) -> str:
    """Evidence is stored as its canonical JSON text, so storage round trips are exact."""
    return canonical_bytes(evidence).decode("utf-8")


def entry_document(row: dict[str, Any]) -> dict[str, Any]:
    doc = {name: row[name] for name in HASHED_FIELDS}
    doc["evidence"] = orjson.loads(row["evidence"])
    return doc


def entry_hash(row: dict[str, Any]) -> str:
    return hash_document(entry_document(row))


def hash_document(doc: dict[str, Any]) -> str:
    """SHA-256 of the canonical document; the hot loop of ``ledger verify``.

    Scalar columns are checked by type (cheap); only the small evidence object is walked.
    """
    seq = doc["seq"]
    fast = type(seq) is int and 0 < seq <= 2**53 - 1 and in_fast_domain(doc["evidence"])
    if fast:
        for name in _SCALARS[1:]:
            value = doc[name]
            if value is not None and type(value) is not str:
                fast = False
                break
    if fast:
        try:
            return hashlib.sha256(orjson.dumps(doc, option=_SORT)).hexdigest()
        except orjson.JSONEncodeError:
            pass
    return hashlib.sha256(rfc8785.dumps(doc)).hexdigest()


def hash_row(values: Sequence[Any]) -> str:
    """``entry_hash`` of a row given as a tuple in ``HASHED_FIELDS`` order: the verify hot loop.

    The common case (string columns, an int sequence, evidence inside the fast domain) is
    serialised inline; anything else takes the general path, which falls back to rfc8785.
    """
    seq, dev, event, from_state, to_state, actor, from_c, to_c, location, occurred, evidence, prev = values[:12]
    doc_evidence = orjson.loads(evidence)
    if (
        type(seq) is int
        and 0 < seq <= _MAX_SEQ
        and (from_state is None or type(from_state) is str)
        and type(dev) is str
        and type(event) is str
        and type(to_state) is str
        and type(actor) is str
        and type(from_c) is str
        and type(to_c) is str
        and type(location) is str
        and type(occurred) is str
        and type(prev) is str
        and in_fast_domain(doc_evidence)
    ):
        try:
            return hashlib.sha256(
                orjson.dumps(
                    {
                        "seq": seq,
                        "device_serial": dev,
                        "event": event,
                        "from_state": from_state,
                        "to_state": to_state,
                        "actor": actor,
                        "from_custodian": from_c,
                        "to_custodian": to_c,
                        "location": location,
                        "occurred_at": occurred,
                        "evidence": doc_evidence,
                        "prev_hash": prev,
                    },
                    option=_SORT,
                )
            ).hexdigest()
        except orjson.JSONEncodeError:
            pass
    doc = dict(zip(HASHED_FIELDS, values, strict=False))
    doc["evidence"] = doc_evidence
    return hash_document(doc)


_FRAGMENT = orjson.Fragment


def spliced_hash(values: Sequence[Any]) -> str | None:
    """``entry_hash`` assuming the stored evidence text is already canonical; the verify fast path.

    Keys are written in RFC 8785 order by hand and the evidence column (stored as canonical JSON
    text, see ``evidence_text``) is spliced in verbatim instead of being parsed and re-serialised.
    A match with the stored hash is conclusive: the evidence text is first checked to be one
    complete JSON value, so the document bytes parse back into exactly these fields, and equal
    bytes mean equal fields. A mismatch is not: the caller re-hashes through ``hash_row``, which
    decides. Returns None when the evidence text is not JSON at all.
    """
    seq, dev, event, from_state, to_state, actor, from_c, to_c, location, occurred, evidence, prev = values[:12]
    try:
        orjson.loads(evidence)
        return hashlib.sha256(
            orjson.dumps(
                {  # sorted by UTF-16 code units, as RFC 8785 requires (all ASCII here)
                    "actor": actor,
                    "device_serial": dev,
                    "event": event,
                    "evidence": _FRAGMENT(evidence),
                    "from_custodian": from_c,
                    "from_state": from_state,
                    "location": location,
                    "occurred_at": occurred,
                    "prev_hash": prev,
                    "seq": seq,
                    "to_custodian": to_c,
                    "to_state": to_state,
                }
            )
        ).hexdigest()
    except (orjson.JSONDecodeError, orjson.JSONEncodeError, TypeError):
        return None
