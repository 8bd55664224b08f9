"""An entry's neighbours in its own log's chain: what ``audit history`` shows as its links.

With one log per site, the entry an entry extends is the one before it *in its log*
(``log_seq - 1``), not ``seq - 1`` (another site's entry may sit there), and a log's first entry
extends the log's genesis (``logs.first_link``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import text
from sqlmodel import Session

from factory.kernel.ledger.logs import first_link
from factory.kernel.models.custody_entry import CustodyEntry


@dataclass(frozen=True)
class ChainLinks:
    previous_seq: int | None  # None: the log's first entry, or the entry before it is missing
    previous_entry_hash: str | None  # what it must link to (the genesis for a log's first entry)
    next_seq: int | None  # None: the head of its log
    next_prev_hash: str | None  # prev_hash of the entry that extends it


def chain_links(session: Session, entries: Iterable[CustodyEntry]) -> dict[int, ChainLinks]:
    """By ``seq``: each entry's neighbours in its own log (read in one query per log and 500 positions)."""
    entries = list(entries)
    wanted: dict[str, set[int]] = {}
    for e in entries:
        wanted.setdefault(e.log, set()).update((e.log_seq - 1, e.log_seq + 1))
    found: dict[tuple[str, int], tuple[int, str, str]] = {}
    for log, positions in wanted.items():
        ordered = sorted(p for p in positions if p >= 1)
        for start in range(0, len(ordered), 500):
            chunk = ", ".join(str(p) for p in ordered[start : start + 500])  # integers only
            rows = session.execute(
                text(
                    "SELECT log_seq, seq, entry_hash, prev_hash FROM custody_entry"
                    f" WHERE log = :log AND log_seq IN ({chunk})"
                ),
                {"log": log},
            )
            found.update({(log, int(r[0])): (int(r[1]), str(r[2]), str(r[3])) for r in rows})
    return {e.seq: _links(e, found.get((e.log, e.log_seq - 1)), found.get((e.log, e.log_seq + 1))) for e in entries}


def _links(e: CustodyEntry, before: tuple[int, str, str] | None, after: tuple[int, str, str] | None) -> ChainLinks:
    first = e.log_seq == 1
    return ChainLinks(
        previous_seq=None if first or before is None else before[0],
        previous_entry_hash=first_link(e.log, e.hash_version) if first else (before[1] if before else None),
        next_seq=after[0] if after else None,
        next_prev_hash=after[2] if after else None,
    )
