"""Recompute the whole chain from the rows alone and name the first broken entry.

Reads with a plain DB-API cursor in large batches: the ORM would cost more than the hashing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine

from factory.ledger.hashing import HASHED_FIELDS, entry_hash
from factory.models.custody import GENESIS_HASH

_COLUMNS = (*HASHED_FIELDS, "entry_hash")
BATCH = 20_000


@dataclass(frozen=True)
class LedgerReport:
    ok: bool
    entries: int
    head_seq: int | None
    head_hash: str | None
    broken_seq: int | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "broken_seq": self.broken_seq,
            "reason": self.reason,
        }


def verify_ledger(engine: Engine, progress: Callable[[int], None] | None = None) -> LedgerReport:
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute(f"SELECT {', '.join(_COLUMNS)} FROM custody_entry ORDER BY seq")
        prev_hash = GENESIS_HASH
        expected_seq = 1
        count = 0
        while True:
            rows = cur.fetchmany(BATCH)
            if not rows:
                break
            for values in rows:
                row = dict(zip(_COLUMNS, values, strict=True))
                seq = row["seq"]
                if seq != expected_seq:
                    # The entry that should sit here was removed or renumbered: name it.
                    reason = f"missing or renumbered (the next entry found is {seq})"
                    return _broken(count, prev_hash, expected_seq, reason)
                if row["prev_hash"] != prev_hash:
                    return _broken(count, prev_hash, seq, "prev_hash differs from the previous entry_hash")
                try:
                    recomputed = entry_hash(row)
                except ValueError as exc:
                    return _broken(count, prev_hash, seq, f"unreadable entry: {exc}")
                if recomputed != row["entry_hash"]:
                    return _broken(count, prev_hash, seq, "entry_hash does not match the entry's fields")
                prev_hash = row["entry_hash"]
                expected_seq += 1
                count += 1
            if progress is not None:
                progress(count)
        cur.close()
    finally:
        raw.close()
    return LedgerReport(
        ok=True,
        entries=count,
        head_seq=count or None,
        head_hash=prev_hash if count else None,
    )


def _broken(count: int, prev_hash: str, seq: int, reason: str) -> LedgerReport:
    return LedgerReport(
        ok=False,
        entries=count,
        head_seq=count or None,
        head_hash=prev_hash if count else None,
        broken_seq=seq,
        reason=f"custody entry {seq}: {reason}",
    )
