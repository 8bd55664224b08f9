"""Recompute the whole chain from the rows alone and name the first broken entry.

Rows are read with a plain DB-API cursor in large batches (the ORM would cost more than the
hashing). Large ledgers are split into sequence ranges verified by worker processes, each with
its own connection; the parent then checks that the ranges link up. The first broken entry in
sequence order is reported either way.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from sqlalchemy import Engine

from factory.kernel.ledger.hashing import HASHED_FIELDS, hash_row, spliced_hash
from factory.kernel.models.custody_entry import GENESIS_HASH

_COLUMNS = (*HASHED_FIELDS, "entry_hash")
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM custody_entry"
BATCH = 20_000
PARALLEL_THRESHOLD = 200_000  # below this, process start-up costs more than it saves


@dataclass(frozen=True)
class LedgerReport:
    ok: bool
    entries: int
    head_seq: int | None
    head_hash: str | None
    broken_seq: int | None = None
    reason: str | None = None

    def failed_anchor(self, reason: str, seq: int) -> LedgerReport:
        """The chain itself verifies, but a signed head it once had is gone or different."""
        return LedgerReport(False, self.entries, self.head_seq, self.head_hash, seq, reason)

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "broken_seq": self.broken_seq,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class _RangeResult:
    count: int
    first_prev_hash: str | None
    last_seq: int | None
    last_hash: str | None
    broken_seq: int | None = None
    reason: str | None = None


def _check_rows(
    batches: Iterable[Sequence[tuple[object, ...]]],
    expected_seq: int,
    prev_hash: str | None,
    progress: Callable[[int], None] | None = None,
) -> _RangeResult:
    """Walk rows in seq order. ``prev_hash`` None: accept the first row's link (checked by the caller)."""
    count = 0
    first_prev: str | None = None
    last_hash = prev_hash

    def broken(seq: int, reason: str) -> _RangeResult:
        return _RangeResult(count, first_prev, expected_seq - 1 if count else None, last_hash, seq, reason)

    for rows in batches:
        for values in rows:
            seq = values[0]
            if seq != expected_seq:
                # The entry that should sit here was removed or renumbered: name it.
                return broken(expected_seq, f"missing or renumbered (the next entry found is {seq})")
            if count == 0:
                first_prev = values[11]  # type: ignore[assignment]
            if last_hash is not None and values[11] != last_hash:
                return broken(seq, "prev_hash differs from the previous entry_hash")
            if spliced_hash(values) != values[12]:
                # Not conclusive (e.g. evidence stored in a non-canonical but equal form): re-hash fully.
                try:
                    recomputed = hash_row(values)
                except (ValueError, TypeError) as exc:
                    return broken(seq, f"unreadable entry: {exc}")
                if recomputed != values[12]:
                    return broken(seq, "entry_hash does not match the entry's fields")
            last_hash = values[12]  # type: ignore[assignment]
            expected_seq += 1
            count += 1
        if progress is not None:
            progress(count)
    return _RangeResult(count, first_prev, expected_seq - 1 if count else None, last_hash)


def _batches(engine: Engine, where: str = "", params: tuple[int, ...] = ()) -> Iterable[list[tuple[object, ...]]]:
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        placeholder = "?" if engine.dialect.name == "sqlite" else "%s"
        cur.execute(f"{_SELECT} {where.replace('?', placeholder)} ORDER BY seq", params)
        while rows := cur.fetchmany(BATCH):
            yield rows
        cur.close()
    finally:
        raw.close()


def _verify_range(url: str, lo: int, hi: int) -> _RangeResult:
    from factory.kernel.db.engine import make_engine

    engine = make_engine(url)
    try:
        return _check_rows(_batches(engine, "WHERE seq >= ? AND seq < ?", (lo, hi)), lo, None)
    finally:
        engine.dispose()


def verify_ledger(
    engine: Engine, progress: Callable[[int], None] | None = None, workers: int | None = None
) -> LedgerReport:
    with engine.connect() as conn:
        total, max_seq = conn.exec_driver_sql("SELECT count(*), max(seq) FROM custody_entry").one()
    workers = workers if workers is not None else min(os.cpu_count() or 1, 8)
    if total < PARALLEL_THRESHOLD or workers < 2 or engine.url.database in (None, "", ":memory:"):
        return _report(_check_rows(_batches(engine), 1, GENESIS_HASH, progress))
    return _verify_parallel(engine, int(max_seq), workers, progress)


def _verify_parallel(
    engine: Engine, max_seq: int, workers: int, progress: Callable[[int], None] | None
) -> LedgerReport:
    url = engine.url.render_as_string(hide_password=False)
    chunks = workers * 4
    step = -(-max_seq // chunks)
    ranges = [(lo, min(lo + step, max_seq + 1)) for lo in range(1, max_seq + 1, step)]
    # spawn: never fork a process that may hold database connections or server threads.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_verify_range, url, lo, hi) for lo, hi in ranges]
        count = 0
        prev_hash = GENESIS_HASH
        for (lo, hi), future in zip(ranges, futures, strict=True):
            part = future.result()
            if part.count and part.first_prev_hash != prev_hash:
                return _report(
                    _RangeResult(count, None, lo - 1, prev_hash, lo, "prev_hash differs from the previous entry_hash")
                )
            if part.broken_seq is not None:
                return _report(
                    _RangeResult(count + part.count, None, None, part.last_hash, part.broken_seq, part.reason)
                )
            if part.last_seq != hi - 1:
                found = "none" if part.last_seq is None else str(part.last_seq)
                missing = lo if part.last_seq is None else part.last_seq + 1
                return _report(
                    _RangeResult(count + part.count, None, None, part.last_hash, missing,
                                 f"missing or renumbered (range ends at {found})")
                )  # fmt: skip
            count += part.count
            prev_hash = part.last_hash or prev_hash
            if progress is not None:
                progress(count)
    return _report(_RangeResult(count, None, count or None, prev_hash if count else None))


def _report(part: _RangeResult) -> LedgerReport:
    head_hash = part.last_hash if part.count else None
    if part.broken_seq is None:
        return LedgerReport(ok=True, entries=part.count, head_seq=part.count or None, head_hash=head_hash)
    return LedgerReport(
        ok=False,
        entries=part.count,
        head_seq=part.count or None,
        head_hash=head_hash,
        broken_seq=part.broken_seq,
        reason=f"custody entry {part.broken_seq}: {part.reason}",
    )
