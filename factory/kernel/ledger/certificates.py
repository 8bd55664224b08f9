"""Certificate rows checked against the custody entries that name them.

Certificates live in their own table, outside the chain. Since hash version 2 a ``sanitised``
entry names each certificate of its round with its digest (``append.bind_certificates``), so the
chain vouches for the rows: a row deleted, swapped for another envelope, or added to a round
that is already closed is a problem here. Entries written before (version 1) name certificate
ids only: for them a deleted row is still caught, a swapped one only by its own signature.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, text
from sqlmodel import Session

from factory.kernel.canonical import canonical_bytes
from factory.kernel.db.engine import read_scope


@dataclass(frozen=True)
class CertificateRowProblem:
    certificate_id: str
    seq: int | None  # the sanitised entry involved, if any
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {"certificate_id": self.certificate_id, "seq": self.seq, "reason": self.reason}


def _envelope_digest(envelope: str) -> str | None:
    try:
        doc = orjson.loads(envelope)
        return hashlib.sha256(canonical_bytes(doc["certificate"])).hexdigest()
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def check_certificate_rows(
    bind: Engine | Connection | Session, entries: tuple[Sequence[Sequence[Any]], dict[int, int]] | None = None
) -> list[CertificateRowProblem]:
    """Every problem between the certificate rows and the ``sanitised`` entries, in sequence order.

    ``bind``: an engine (a connection of its own) or the caller's connection or session.
    ``entries``: the (seq, evidence, device_id) of the ``sanitised`` entries in seq order and the
    device_id by seq of the ``start_sanitise`` ones, when the caller has just read every entry
    (``verify_ledger``); otherwise they are selected here.
    """
    if isinstance(bind, Engine):
        with read_scope(bind) as conn:
            return check_certificate_rows(conn, entries)
    rows = {
        str(cid): (str(digest), str(envelope), int(round_seq))
        for cid, digest, envelope, round_seq in bind.execute(
            text("SELECT id, digest_sha256, envelope, erase_round_seq FROM certificate")
        )
    }
    if entries is None:
        entries = (
            bind.execute(
                text("SELECT seq, evidence, device_id FROM custody_entry WHERE event = 'sanitised' ORDER BY seq")
            ).all(),
            dict(bind.execute(text("SELECT seq, device_id FROM custody_entry WHERE event = 'start_sanitise'")).all()),
        )
    closing, opened = entries
    problems: list[CertificateRowProblem] = []
    named: set[str] = set()
    for seq, evidence, _ in closing:
        problems += _check_entry(int(seq), evidence, rows, named)
    # Only rounds closed by an entry that lists its certificates: such a list is complete.
    listing = [(int(s), int(d)) for s, e, d in closing if '"certificates":' in str(e)]
    closed_rounds = _closed_rounds(listing, opened)
    for cid, (_, _, round_seq) in sorted(rows.items()):
        if cid not in named and round_seq in closed_rounds:
            problems.append(
                CertificateRowProblem(cid, None, "no sanitised entry names it, yet its erase round is closed")
            )
    return problems


def _check_entry(
    seq: int, evidence: str, rows: dict[str, tuple[str, str, int]], named: set[str]
) -> list[CertificateRowProblem]:
    try:
        doc = orjson.loads(evidence)
        ids = [str(i) for i in doc.get("certificates", [])]
        digests = doc.get("certificate_digests") or {}
    except (orjson.JSONDecodeError, AttributeError, TypeError):
        return []  # an unreadable entry is the chain's finding, not this one's
    problems = []
    for cid in ids:
        named.add(cid)
        row = rows.get(cid)
        if row is None:
            problems.append(CertificateRowProblem(cid, seq, "named by a sanitised entry but missing from the database"))
            continue
        digest, envelope, _ = row
        if cid in digests and digests[cid] != digest:
            problems.append(CertificateRowProblem(cid, seq, "its row holds another certificate than the entry names"))
        elif _envelope_digest(envelope) != digest:
            problems.append(CertificateRowProblem(cid, seq, "its stored envelope does not hash to its digest"))
    return problems


def _closed_rounds(closing: list[tuple[int, int]], opened: dict[int, int]) -> set[int]:
    """The start_sanitise seqs whose round a sanitised entry closed (the device's latest opening before it)."""
    by_device: dict[int, list[int]] = {}
    for start, device in sorted(opened.items()):
        by_device.setdefault(int(device), []).append(int(start))
    closed = set()
    for seq, device in closing:
        starts = [s for s in by_device.get(device, []) if s < seq]
        if starts:
            closed.add(starts[-1])
    return closed
