"""What exactly an entry hash covers: every field of the entry except the hash itself."""

from __future__ import annotations

from typing import Any

import orjson

from factory.canonical import canonical_bytes, sha256_hex

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


def evidence_text(evidence: dict[str, Any]) -> str:
    """Evidence is stored as its canonical JSON text, so storage round trips are exact."""
    return canonical_bytes(evidence).decode("utf-8")


def entry_document(row: dict[str, Any]) -> dict[str, Any]:
    doc = {name: row[name] for name in HASHED_FIELDS}
    doc["evidence"] = orjson.loads(row["evidence"])
    return doc


def entry_hash(row: dict[str, Any]) -> str:
    return sha256_hex(entry_document(row))
