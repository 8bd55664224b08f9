"""Recompute the whole log from the rows alone: the chain, the Merkle tree, and every signed head.

Rows are read with a plain DB-API cursor in large batches (the ORM would cost more than the
hashing). Each entry's canonical bytes are hashed twice: SHA-256 for ``entry_hash`` (the chain)
and as a Merkle leaf; the tree's right edge (``merkle.Frontier``) gives the root at the size of
every signed head, compared with what the head signed. Large logs are split into ranges of a
power-of-two size verified by worker processes, each returning its range's subtree hashes, which
the parent joins in order. The first broken entry in sequence order is reported either way;
entries after the latest signed head are reported as the *unsigned tail*.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace

from sqlalchemy import Engine

from factory.kernel.db.engine import read_scope
from factory.kernel.key_registry import KeyNotValid, Keyring
from factory.kernel.ledger import merkle
from factory.kernel.ledger.certificates import check_certificate_rows
from factory.kernel.ledger.hashing import ROW_COLUMNS, EvidenceError, row_bytes, spliced_bytes
from factory.kernel.ledger.heads import TreeHead, stored_heads
from factory.kernel.ledger.tree import TreeMissing, root_at, tree_size
from factory.kernel.models.custody_entry import GENESIS_HASH

_SELECT = f"SELECT {', '.join(ROW_COLUMNS)} FROM custody_entry"
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
    signed_size: int = 0  # entries covered by the latest signed tree head that verified
    heads_checked: int = 0
    root_hash: str | None = None  # the Merkle root over every entry

    @property
    def unsigned_tail(self) -> int:
        """Entries after the latest signed head: verified as a chain, but not yet committed to."""
        return max(self.entries - self.signed_size, 0)

    def failed_anchor(self, reason: str, seq: int) -> LedgerReport:
        """The chain itself verifies, but a signed head it once had is gone or different."""
        return replace(self, ok=False, broken_seq=seq, reason=reason)

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "broken_seq": self.broken_seq,
            "reason": self.reason,
            "signed_size": self.signed_size,
            "unsigned_tail": self.unsigned_tail,
            "heads_checked": self.heads_checked,
            "root_hash": self.root_hash,
        }


@dataclass
class _RangeResult:
    count: int
    first_prev_hash: str | None
    last_seq: int | None
    last_hash: str | None
    broken_seq: int | None = None
    reason: str | None = None
    nodes: list[bytes] = field(default_factory=list)  # the range's right edge (its subtree hashes)
    at_sizes: dict[int, list[bytes]] = field(default_factory=dict)  # right edge at each asked size
    first_version: int = 0
    last_version: int = 0


def _canonical(values: Sequence[object]) -> bytes:
    """The row's canonical bytes if its stored hash matches them; :raises ValueError: if not."""
    fast = spliced_bytes(values)
    if fast is not None and hashlib.sha256(fast).hexdigest() == values[14]:
        return fast
    try:
        slow = row_bytes(values)
    except (EvidenceError, ValueError, TypeError) as exc:
        raise ValueError(f"unreadable entry: {exc}") from None
    if hashlib.sha256(slow).hexdigest() != values[14]:
        raise ValueError("entry_hash does not match the entry's fields")
    return slow


def _check_rows(
    batches: Iterable[Sequence[tuple[object, ...]]],
    expected_seq: int,
    prev_hash: str | None,
    progress: Callable[[int], None] | None = None,
    sizes: frozenset[int] = frozenset(),
) -> _RangeResult:
    """Walk rows in seq order. ``prev_hash`` None: accept the first row's link (checked by the caller).

    ``sizes`` are tree sizes (counted from ``expected_seq - 1``) whose right edge to keep.
    """
    out = _RangeResult(0, None, None, prev_hash)
    edge = merkle.Frontier()
    version = 0
    for rows in batches:
        for values in rows:
            seq = values[0]
            if seq != expected_seq:
                # The entry that should sit here was removed or renumbered: name it.
                return _broken(out, expected_seq, f"missing or renumbered (the next entry found is {seq})")
            if out.count == 0:
                out.first_prev_hash = values[11]  # type: ignore[assignment]
                out.first_version = int(values[13] or 1)  # type: ignore[call-overload]
            if out.last_hash is not None and values[11] != out.last_hash:
                return _broken(out, seq, "prev_hash differs from the previous entry_hash")
            if (values[13] or 1) < version:
                return _broken(out, seq, f"hash_version {values[13]} after entries of version {version}")
            version = int(values[13] or 1)  # type: ignore[call-overload]
            try:
                edge.push(merkle.leaf_hash(_canonical(values)))
            except ValueError as exc:
                return _broken(out, seq, str(exc))
            out.last_hash = values[14]  # type: ignore[assignment]
            out.last_version = version
            expected_seq += 1
            out.count += 1
            if out.count in sizes:
                out.at_sizes[out.count] = list(edge.nodes)
        if progress is not None:
            progress(out.count)
    out.last_seq = expected_seq - 1 if out.count else None
    out.nodes = list(edge.nodes)
    return out


def _broken(out: _RangeResult, seq: int, reason: str) -> _RangeResult:
    out.last_seq = seq - 1 if out.count else None
    out.broken_seq, out.reason = seq, reason
    return out


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


def _verify_range(url: str, lo: int, hi: int, sizes: frozenset[int]) -> _RangeResult:
    from factory.kernel.db.engine import make_engine

    engine = make_engine(url)
    try:
        return _check_rows(_batches(engine, "WHERE seq >= ? AND seq < ?", (lo, hi)), lo, None, sizes=sizes)
    finally:
        engine.dispose()


def verify_ledger(
    engine: Engine,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
    keyring: Keyring | None = None,
    witnessed: Sequence[TreeHead] = (),
) -> LedgerReport:
    """Verify the chain, the tree and every stored signed head (signatures too, given a ``keyring``).

    ``witnessed`` are heads kept outside the database (a witness's or an auditor's copy): checked
    like the stored ones, so deleting a head from the database does not hide a rewrite.
    """
    with read_scope(engine) as conn:
        total, max_seq = conn.exec_driver_sql("SELECT count(*), max(seq) FROM custody_entry").one()
    with read_scope(engine) as conn:
        heads = [*stored_heads(conn), *witnessed]
    sizes = frozenset(h.tree_size for h in heads if h.tree_size > 0)
    workers = workers if workers is not None else min(os.cpu_count() or 1, 8)
    if total < PARALLEL_THRESHOLD or workers < 2 or engine.url.database in (None, "", ":memory:"):
        part = _check_rows(_batches(engine), 1, GENESIS_HASH, progress, sizes)
        roots = {s: _fold(nodes) for s, nodes in part.at_sizes.items()}
        report = _report(part, _fold(part.nodes))
    else:
        report, roots = _verify_parallel(engine, int(max_seq), workers, progress, sizes)
    if not report.ok:
        return report
    report = _check_tree_and_heads(engine, report, heads, roots, keyring)
    if not report.ok:
        return report
    problems = check_certificate_rows(engine)
    if problems:
        first = problems[0]
        named = f" (named by custody entry {first.seq})" if first.seq is not None else ""
        more = f"; {len(problems) - 1} more certificate problem(s)" if len(problems) > 1 else ""
        return replace(
            report,
            ok=False,
            broken_seq=first.seq,
            reason=f"certificate {first.certificate_id}{named}: {first.reason}{more}",
        )
    return report


def _fold(nodes: list[bytes]) -> bytes:
    return merkle.Frontier(0).root() if not nodes else merkle.fold(nodes)


def _check_tree_and_heads(
    engine: Engine, report: LedgerReport, heads: list[TreeHead], roots: dict[int, bytes], keyring: Keyring | None
) -> LedgerReport:
    """The stored tree must match the entries, and every head the root at its size."""
    with read_scope(engine) as session:
        stored = tree_size(session)
        if stored >= report.entries > 0:
            try:
                if root_at(session, report.entries).hex() != report.root_hash:
                    return _head_failure(report, "the stored Merkle tree differs from the entries")
            except TreeMissing as exc:
                return _head_failure(report, f"the stored Merkle tree is incomplete ({exc})")
    signed = 0
    for head in heads:
        where = f"signed tree head of size {head.tree_size} ({head.signed_at})"
        if head.tree_size > report.entries:
            return _head_failure(report, f"ledger truncated: {where}, but the log holds {report.entries} entries")
        expected = roots.get(head.tree_size, merkle.EMPTY_ROOT).hex()
        if head.root_hash != expected:
            return _head_failure(
                report, f"ledger rewritten: {where} has root {head.root_hash}, the entries give {expected}"
            )
        if keyring is not None:
            try:
                head.check_signature(keyring)
            except KeyNotValid as exc:
                return _head_failure(report, f"{where}: {exc}")
        signed = max(signed, head.tree_size)
    return replace(report, signed_size=signed, heads_checked=len(heads))


def _head_failure(report: LedgerReport, reason: str) -> LedgerReport:
    return replace(report, ok=False, reason=reason)


def _verify_parallel(
    engine: Engine, max_seq: int, workers: int, progress: Callable[[int], None] | None, sizes: frozenset[int]
) -> tuple[LedgerReport, dict[int, bytes]]:
    url = engine.url.render_as_string(hide_password=False)
    # Ranges of a power-of-two length starting at its multiples: each is whole subtrees of the log's tree.
    step = 1 << max(-(-max_seq // (workers * 4)) - 1, 1).bit_length()
    ranges = [(lo, min(lo + step, max_seq + 1)) for lo in range(1, max_seq + 1, step)]
    edge, roots = merkle.Frontier(), {}  # type: dict[int, bytes]
    # spawn: never fork a process that may hold database connections or server threads.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [
            pool.submit(_verify_range, url, lo, hi, frozenset(s - lo + 1 for s in sizes if lo <= s < hi))
            for lo, hi in ranges
        ]
        count, prev_hash, version = 0, GENESIS_HASH, 0
        for (lo, hi), future in zip(ranges, futures, strict=True):
            part = future.result()
            problem = _join_problem(part, lo, hi, prev_hash, version)
            if problem is not None:
                seq, reason = problem
                return _report(_RangeResult(count + part.count, None, None, part.last_hash, seq, reason), None), {}
            for local, nodes in part.at_sizes.items():
                roots[lo - 1 + local] = merkle.fold([*edge.nodes, *nodes])
            edge.absorb(part.count, part.nodes)
            count += part.count
            prev_hash, version = part.last_hash or prev_hash, part.last_version or version
            if progress is not None:
                progress(count)
    return _report(_RangeResult(count, None, count or None, prev_hash if count else None), edge.root()), roots


def _join_problem(part: _RangeResult, lo: int, hi: int, prev_hash: str, version: int) -> tuple[int, str] | None:
    if part.count and part.first_prev_hash != prev_hash:
        return lo, "prev_hash differs from the previous entry_hash"
    if part.broken_seq is not None:
        return part.broken_seq, part.reason or ""
    if part.count and part.first_version < version:
        return lo, f"hash_version {part.first_version} after entries of version {version}"
    if part.last_seq != hi - 1:
        found = "none" if part.last_seq is None else str(part.last_seq)
        return (lo if part.last_seq is None else part.last_seq + 1), f"missing or renumbered (range ends at {found})"
    return None


def _report(part: _RangeResult, root: bytes | None) -> LedgerReport:
    head_hash = part.last_hash if part.count else None
    root_hex = root.hex() if root is not None and part.count else None
    if part.broken_seq is None:
        return LedgerReport(True, part.count, part.count or None, head_hash, root_hash=root_hex)
    return LedgerReport(
        ok=False,
        entries=part.count,
        head_seq=part.count or None,
        head_hash=head_hash,
        broken_seq=part.broken_seq,
        reason=f"custody entry {part.broken_seq}: {part.reason}",
    )
