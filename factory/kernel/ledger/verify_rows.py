"""Check custody rows a batch at a time: the light core of ``verify_ledger``, also run by its worker processes.

A batch of rows of one site's log (``ROW_COLUMNS`` order, position order) is first checked whole
with list operations (``log_seq`` contiguity, every link, one hash version, integer columns
holding ints); then one tight loop
per row proves the evidence text is exactly its canonical form (which a text with a duplicate
member never is), splices it into the version's document (keys already in RFC 8785 order, so no
per-row sorting or ``dict(zip(...))``), hashes those canonical bytes against ``entry_hash`` and as a
Merkle leaf; the batch's perfect subtrees are then built a level at a time. (Whole-batch ``map``
pipelines were measured slower: every stage makes a list of fresh objects that falls out of the
CPU cache.) Anything the batch path cannot decide (a mismatch, a version change, text it cannot
prove canonical) sends that batch to the per-row path, which re-derives each row through
``hashing`` and names the first broken entry exactly as before.

This module imports only the standard library and orjson, so a worker process starts without
importing the application (``hashing`` is imported only when a batch falls back to the per-row path).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import eq, itemgetter, methodcaller
from typing import Any

import orjson

# What verify selects per row, in this order (hashing.py's field lists are these columns' names).
ROW_COLUMNS: tuple[str, ...] = (
    "seq", "device_serial", "event", "from_state", "to_state", "actor", "from_custodian", "to_custodian",
    "location", "occurred_at", "evidence", "prev_hash", "device_id", "hash_version", "entry_hash", "log", "log_seq",
)  # fmt: skip
SEQ, EVENT, EVIDENCE, PREV, DEVICE, VERSION, HASH, LOG, POSITION = 0, 2, 10, 11, 12, 13, 14, 15, 16
# The hashed columns of each canonical version (hashing.HASHED_FIELDS, HASHED_FIELDS_V2, HASHED_FIELDS_V3).
VERSION_COLUMNS: dict[int, tuple[str, ...]] = {
    1: ROW_COLUMNS[:12], 2: ROW_COLUMNS[:14], 3: (*ROW_COLUMNS[:14], "log", "log_seq")
}  # fmt: skip
LEGACY_GENESIS = "0" * 64  # offline_verify.LEGACY_GENESIS (this module stays light: no imaging import)
BATCH = 16_384  # a power of two: batches are whole subtrees of the log's tree
_SHA = hashlib.sha256
_DIGEST = methodcaller("digest")
_LEAF, _NODE = b"\x00", b"\x01"
# Strict integers: an integer beyond +/-2**53 is outside RFC 8785's domain, the per-row path decides.
_SORTED = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER
_EVIDENCE_KEY = b'"evidence":'
_REFUSED = (orjson.JSONDecodeError, orjson.JSONEncodeError, TypeError, AttributeError, UnicodeError)
_GET = {name: itemgetter(i) for i, name in enumerate(ROW_COLUMNS)}
Row = Sequence[Any]


# The hashed document of each version with its keys already in RFC 8785 order (ASCII names: code
# point order); the evidence arrives parsed (verify: sorted with it) or as a verbatim ``Fragment`` (ledger_fill).
def _document_v1(v: Row, evidence: Any) -> dict[str, Any]:
    return {"actor": v[5], "device_serial": v[1], "event": v[2], "evidence": evidence, "from_custodian": v[6],
            "from_state": v[3], "location": v[8], "occurred_at": v[9], "prev_hash": v[11], "seq": v[0],
            "to_custodian": v[7], "to_state": v[4]}  # fmt: skip


def _document_v2(v: Row, evidence: Any) -> dict[str, Any]:
    return {"actor": v[5], "device_id": v[12], "device_serial": v[1], "event": v[2], "evidence": evidence,
            "from_custodian": v[6], "from_state": v[3], "hash_version": v[13], "location": v[8], "occurred_at": v[9],
            "prev_hash": v[11], "seq": v[0], "to_custodian": v[7], "to_state": v[4]}  # fmt: skip


def _document_v3(v: Row, evidence: Any) -> dict[str, Any]:
    return {"actor": v[5], "device_id": v[12], "device_serial": v[1], "event": v[2], "evidence": evidence,
            "from_custodian": v[6], "from_state": v[3], "hash_version": v[13], "location": v[8], "log": v[15],
            "log_seq": v[16], "occurred_at": v[9], "prev_hash": v[11], "seq": v[0], "to_custodian": v[7],
            "to_state": v[4]}  # fmt: skip


DOCUMENTS: dict[int, Callable[[Row, Any], dict[str, Any]]] = {
    1: _document_v1, 2: _document_v2, 3: _document_v3
}  # fmt: skip
# Hashed columns SQLite could hand back as another type (INTEGER affinity keeps a REAL such as 1e21).
INTEGER_COLUMNS: dict[int, tuple[str, ...]] = {
    1: ("seq",), 2: ("seq", "device_id", "hash_version"), 3: ("seq", "device_id", "hash_version", "log_seq")
}  # fmt: skip


def first_link(log: str, version: int) -> str:
    """What a log's first entry links to (``logs.first_link``, kept here to stay light): the log's
    genesis, derived from its name, or for hash versions 1 and 2 the one genesis of the log from
    before per-site logs. tests/kernel/test_site_logs.py holds the two to agreeing."""
    if version < 3:
        return LEGACY_GENESIS
    return hashlib.sha256(b"device-factory/custody-log/1\x00" + log.encode("utf-8")).hexdigest()


def _plain(rows: Sequence[Row], version: int) -> bool:
    """Whether the version's integer columns hold only ints in every row (else the per-row path decides)."""
    return all(set(map(type, map(_GET[c], rows))) == {int} for c in INTEGER_COLUMNS[version])


def canonical_rows(rows: Sequence[Row], version: int) -> Iterable[bytes | None]:
    """Each row's canonical bytes by splicing, or None for a row the batch path cannot prove (see ``batch_leaves``)."""
    document = DOCUMENTS[version]
    for v in rows:
        try:
            text = v[EVIDENCE].encode()
            canonical = orjson.dumps(document(v, orjson.loads(text)), option=_SORTED)
            at = canonical.find(_EVIDENCE_KEY) + len(_EVIDENCE_KEY)
            yield canonical if canonical[at : at + len(text)] == text and text[:1] == b"{" else None
        except _REFUSED:
            yield None


def batch_leaves(rows: Sequence[Row], version: int) -> list[bytes] | None:
    """Each row's Merkle leaf, its canonical bytes hashing to its ``entry_hash``; None: a row needs the per-row path.

    A row's evidence text is accepted only when it is exactly the sorted, strict orjson form of
    what it parses to: a text with a duplicate member, whitespace, an integer beyond 2**53 or
    trailing text never is. One ``dumps`` of the document with the parsed evidence gives both the
    canonical bytes and that form, at the ``"evidence":`` member (the first such bytes: the members
    before it are plain strings and integers, inside which every quote is escaped); comparing
    ``len(text)`` bytes there suffices, as a text that parses as one object cannot be a proper
    prefix of another object's JSON (it closes where that object closes). The other values must be
    str, int or None and encode as RFC 8785 does (orjson: the same escapes, raw UTF-8; it refuses a
    lone surrogate). Whatever this path declines, the per-row path (``hashing.canonical_or_reason``)
    decides in full.
    """
    if version not in DOCUMENTS or not _plain(rows, version):
        return None
    leaves: list[bytes] = []
    add, sha, document, loads, dumps, key, skip = (
        leaves.append,
        _SHA,
        DOCUMENTS[version],
        orjson.loads,
        orjson.dumps,
        _EVIDENCE_KEY,
        len(_EVIDENCE_KEY),
    )
    try:
        for v in rows:  # canonical_rows inlined: this loop is verify's cost per entry
            text = v[EVIDENCE].encode()
            canonical = dumps(document(v, loads(text)), option=_SORTED)
            at = canonical.find(key) + skip
            if canonical[at : at + len(text)] != text or text[:1] != b"{":
                return None
            if sha(canonical).hexdigest() != v[HASH]:
                return None
            add(sha(_LEAF + canonical).digest())
    except _REFUSED:
        return None
    return leaves


def _pairs(level: list[bytes]) -> list[bytes]:
    """The next level up: RFC 9162 node hashes of adjacent pairs (an odd last node waits)."""
    return list(map(_DIGEST, map(_SHA, map(bytes.__add__, map(_NODE.__add__, level[0::2]), level[1::2]))))


def subtree_levels(leaves: list[bytes]) -> list[list[bytes]]:
    """Level 0 is the leaves; level L holds the perfect subtrees of 2**L leaves, left to right."""
    levels = [leaves]
    while len(levels[-1]) >= 2:
        levels.append(_pairs(levels[-1]))
    return levels


def prefix_edge(levels: list[list[bytes]], count: int) -> list[bytes]:
    """The right edge (largest subtree first) of the first ``count`` leaves of ``levels``."""
    return [levels[lv][(count >> lv) - 1] for lv in range(count.bit_length() - 1, -1, -1) if count >> lv & 1]


class Edge:
    """The right edge of a growing tree (``merkle.Frontier``'s arithmetic, kept here to stay light)."""

    def __init__(self, size: int = 0, nodes: Iterable[bytes] = ()) -> None:
        self.size, self.nodes = size, list(nodes)

    def push(self, leaf: bytes) -> None:
        node, index = leaf, self.size
        while index & 1:
            node = _SHA(_NODE + self.nodes.pop() + node).digest()
            index >>= 1
        self.nodes.append(node)
        self.size += 1

    def aligned(self, count: int) -> bool:
        """Whether a range of ``count`` leaves can be absorbed as its own subtrees."""
        return count > 0 and self.size % (1 << (count.bit_length() - 1)) == 0

    def absorb(self, count: int, nodes: Sequence[bytes]) -> None:
        """Append ``count`` leaves given by their right edge; the range must be ``aligned``."""
        levels = [b for b in range(count.bit_length() - 1, -1, -1) if count >> b & 1]
        for level, node in zip(levels, nodes, strict=True):
            index = self.size >> level
            while index & 1:
                node = _SHA(_NODE + self.nodes.pop() + node).digest()
                index >>= 1
            self.nodes.append(node)
            self.size += 1 << level

    def after(self, count: int, nodes: Sequence[bytes]) -> list[bytes]:
        """The edge this one would have after absorbing ``count`` leaves (itself unchanged)."""
        copy = Edge(self.size, self.nodes)
        copy.absorb(count, nodes)
        return copy.nodes


@dataclass
class RangeResult:
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
    # What the certificate check needs from the entries (``certificates.check_certificate_rows``),
    # kept as the rows pass so verify need not select them again: (seq, evidence, device_id) of the
    # ``sanitised`` entries that may name certificates, (seq, device_id) of the ``start_sanitise`` ones.
    sanitised: list[tuple[Any, Any, Any]] = field(default_factory=list)
    opened: list[tuple[Any, Any]] = field(default_factory=list)

    def keep_certificate_entries(self, rows: Sequence[Row]) -> None:
        # Selected by C-level map/compress: a Python test per row would cost verify ~5% more.
        events = list(map(_GET["event"], rows))
        closing = compress(rows, map(eq, events, repeat("sanitised")))
        self.sanitised += [(v[SEQ], v[EVIDENCE], v[DEVICE]) for v in closing if _may_name(v)]
        self.opened += [(v[SEQ], v[DEVICE]) for v in compress(rows, map(eq, events, repeat("start_sanitise")))]


def _may_name(v: Row) -> bool:
    """Whether a sanitised entry's evidence may hold a ``certificates`` member: only text that spells
    the name out, or writes it with an escape (a backslash), can; the others name no certificate."""
    evidence = v[EVIDENCE]
    return type(evidence) is not str or "certificates" in evidence or "\\" in evidence


class RowWalk:
    """Walks one log's rows in position (``log_seq``) order from position ``expected_seq``.
    ``genesis_of``: the log's name, when the walk starts at its first entry (which must link to the
    log's genesis); None: accept the first row's link (checked by the caller). Entries are named by
    their position in the log.

    ``sizes`` are tree sizes (counted from the first row) whose right edge to keep.
    """

    def __init__(self, expected_seq: int, genesis_of: str | None, sizes: frozenset[int] = frozenset()) -> None:
        self.out = RangeResult(0, None, None, None)
        self.edge, self.expected_seq, self.version, self.sizes = Edge(), expected_seq, 0, sizes
        self.genesis_of = genesis_of

    def run(self, batches: Iterable[Sequence[Sequence[Any]]], progress: Callable[[int], None] | None) -> RangeResult:
        out = self.out
        for rows in batches:
            if self.genesis_of is not None and out.count == 0 and rows:  # the link the first entry must have
                out.last_hash = first_link(self.genesis_of, int(rows[0][VERSION] or 1))
            if not self.batch(rows):
                self.rows(rows)
                if out.broken_seq is not None:
                    return out
            if progress is not None:
                progress(out.count)
        out.last_seq = self.expected_seq - 1 if out.count else None
        out.nodes = list(self.edge.nodes)
        return out

    def batch(self, rows: Sequence[Sequence[Any]]) -> bool:
        """Check and take the whole batch at once; False (nothing taken) when it needs the per-row path."""
        n, out = len(rows), self.out
        hashes, prevs, versions = (list(map(_GET[c], rows)) for c in ("entry_hash", "prev_hash", "hash_version"))
        version = versions[0] if n else None
        if (
            not n
            or list(map(_GET["log_seq"], rows)) != list(range(self.expected_seq, self.expected_seq + n))
            or (out.last_hash is not None and prevs[0] != out.last_hash)
            or prevs[1:] != hashes[:-1]
            or type(version) is not int
            or version < self.version
            or versions.count(version) != n
            or not self.edge.aligned(n)
        ):
            return False
        leaves = batch_leaves(rows, version)
        if leaves is None:
            return False
        levels = subtree_levels(leaves)
        for size in sorted(s for s in self.sizes if out.count < s <= out.count + n):
            local = size - out.count
            out.at_sizes[size] = self.edge.after(local, prefix_edge(levels, local))
        self.edge.absorb(n, prefix_edge(levels, n))
        out.keep_certificate_entries(rows)
        if out.count == 0:
            out.first_prev_hash, out.first_version = prevs[0], version
        out.last_hash, out.last_version, self.version = hashes[-1], version, version
        out.count += n
        self.expected_seq += n
        return True

    def rows(self, rows: Sequence[Sequence[Any]]) -> None:
        """One row at a time, each re-derived through ``hashing``; stops at the first broken entry."""
        from factory.kernel.ledger.hashing import canonical_or_reason

        out = self.out
        for values in rows:
            seq = values[POSITION]  # entries are named by their position in the log
            if seq != self.expected_seq:
                # The entry that should sit here was removed or renumbered: name it.
                return self._broken(self.expected_seq, f"missing or renumbered (the next entry found is {seq})")
            if out.count == 0:
                out.first_prev_hash, out.first_version = values[PREV], int(values[VERSION] or 1)
            if out.last_hash is not None and values[PREV] != out.last_hash:
                return self._broken(seq, "prev_hash differs from the previous entry_hash")
            if (values[VERSION] or 1) < self.version:
                return self._broken(seq, f"hash_version {values[VERSION]} after entries of version {self.version}")
            self.version = int(values[VERSION] or 1)
            canonical = canonical_or_reason(values)
            if isinstance(canonical, str):
                return self._broken(seq, canonical)
            self.edge.push(_SHA(_LEAF + canonical).digest())
            out.keep_certificate_entries((values,))
            out.last_hash, out.last_version = values[HASH], self.version
            self.expected_seq += 1
            out.count += 1
            if out.count in self.sizes:
                out.at_sizes[out.count] = list(self.edge.nodes)
        return None

    def _broken(self, seq: int, reason: str) -> None:
        out = self.out
        out.last_seq = seq - 1 if out.count else None
        out.broken_seq, out.reason = seq, reason


def row_batches(cursor: Any, select: str, params: Sequence[Any] = ()) -> Iterable[list[Any]]:
    """The rows of ``select`` in batches of ``BATCH`` from a DB-API cursor (closed at the end)."""
    try:
        cursor.execute(select, params)
        while rows := cursor.fetchmany(BATCH):
            yield rows
    finally:
        cursor.close()
