"""The custody log's Merkle tree in the database: kept as entries append, read for roots and proofs.

Leaf ``i`` is custody entry ``seq = i + 1`` (its canonical bytes, ``hashing.entry_bytes``).
``ledger_node`` holds every perfect subtree once it is complete, so an append writes the leaf and,
on average, one more node, and a root or a proof reads O(log n) rows. Appends run under the
ledger lock (append.py), so the tree and the chain grow together in one transaction. A database
from before the tree (or one whose tree lags for any reason) is caught up from the entries
themselves on the next append or head (``catch_up``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from sqlalchemy import Connection, insert, text
from sqlmodel import Session

from factory.kernel.errors import Conflict
from factory.kernel.ledger import merkle
from factory.kernel.ledger.hashing import ROW_COLUMNS, row_bytes, spliced_bytes
from factory.kernel.models.ledger_tree import LedgerNode

_CATCH_UP_BATCH = 5_000


class TreeMissing(LookupError):
    """A node the tree should hold is not there: the tree lags the entries (or was tampered with)."""


class TreeAhead(Conflict):
    """The tree already holds the leaf being appended: entries were removed from the chain's end."""


def node_source(conn: Connection | Session) -> merkle.NodeSource:
    """Read perfect nodes by (level, index) in one query; :raises TreeMissing: one is absent."""

    def read(wanted: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        if not wanted:
            return {}
        by_level: dict[int, set[int]] = {}
        for level, idx in wanted:
            by_level.setdefault(int(level), set()).add(int(idx))
        # One (level = l AND idx IN ...) term per level: each a primary-key lookup on both databases
        # (a row-value IN over both columns made SQLite scan the table). Plain SQL with the integers
        # inlined: a statement of a new shape per proof costs SQLAlchemy more to compile than to run.
        where = " OR ".join(
            f"(level = {lv} AND idx IN ({', '.join(str(i) for i in sorted(ix))}))" for lv, ix in by_level.items()
        )
        raw = conn.connection() if isinstance(conn, Session) else conn
        rows = raw.exec_driver_sql(f"SELECT level, idx, hash FROM ledger_node WHERE {where}")
        found = {(int(lv), int(ix)): bytes(h) for lv, ix, h in rows}
        for key in wanted:
            if key not in found:
                raise TreeMissing(f"the Merkle tree lacks node {key} (level, index)")
        return found

    return read


def tree_size(conn: Connection | Session) -> int:
    found = conn.execute(text("SELECT max(idx) FROM ledger_node WHERE level = 0")).scalar()
    return 0 if found is None else int(found) + 1


def frontier(conn: Connection | Session, size: int) -> merkle.Frontier:
    wanted = merkle.frontier_ranges(size)
    found = node_source(conn)(wanted)
    return merkle.Frontier(size, [found[w] for w in wanted])


def root_at(conn: Connection | Session, size: int) -> bytes:
    return merkle.root_hash(size, node_source(conn))


def add_leaf(session: Session, index: int, canonical: bytes) -> None:
    """Add leaf ``index`` (its entry's canonical bytes); the caller holds the ledger lock.

    :raises TreeAhead: the tree already has that leaf (the chain lost entries off its end).
    """
    taken = session.execute(text("SELECT 1 FROM ledger_node WHERE level = 0 AND idx = :i"), {"i": index}).first()
    if taken is not None:
        raise TreeAhead(
            f"the Merkle tree already holds leaf {index}: custody entries after {index} were removed; "
            "run 'factory ledger verify'"
        )
    try:
        edge = frontier(session, index)
    except TreeMissing:
        catch_up(session, index)
        edge = frontier(session, index)
    _store(session, edge.push(merkle.leaf_hash(canonical)))


def _store(session: Session, made: list[tuple[int, int, bytes]]) -> None:
    if made:
        session.execute(insert(LedgerNode), [{"level": lv, "idx": ix, "hash": h} for lv, ix, h in made])


def catch_up(session: Session, size: int) -> None:
    """Grow the stored tree to ``size`` leaves from the custody entries (their rows as they are now)."""
    have = tree_size(session)
    if have >= size:
        return
    edge = _rebuild_frontier(session, have)
    cols = ", ".join(ROW_COLUMNS)
    while edge.size < size:
        rows = session.execute(
            text(f"SELECT {cols} FROM custody_entry WHERE seq > :lo AND seq <= :hi ORDER BY seq"),
            {"lo": edge.size, "hi": min(size, edge.size + _CATCH_UP_BATCH)},
        ).all()
        if not rows:
            raise TreeMissing(f"custody entry {edge.size + 1} is missing: the tree cannot reach {size} leaves")
        made: list[tuple[int, int, bytes]] = []
        for values in rows:
            if int(values[0]) != edge.size + 1:
                raise TreeMissing(f"custody entry {edge.size + 1} is missing: the tree cannot reach {size} leaves")
            made += edge.push(merkle.leaf_hash(canonical_of(values)))
        _store(session, made)


def _rebuild_frontier(session: Session, have: int) -> merkle.Frontier:
    try:
        return frontier(session, have)
    except TreeMissing:
        # Leaves without their parents (an interrupted build): start over from nothing missing.
        raise TreeMissing(f"the stored Merkle tree of {have} leaves is incomplete") from None


def canonical_of(values: Sequence[object]) -> bytes:
    """The canonical bytes of a row in ``ROW_COLUMNS`` order, by the fast path when it is conclusive."""
    fast = spliced_bytes(values)
    if fast is not None and hashlib.sha256(fast).hexdigest() == values[14]:
        return fast
    return row_bytes(values)
