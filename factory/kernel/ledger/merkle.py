"""RFC 9162 Merkle tree hashing over the custody log: leaf and node hashes, roots, proofs.

Leaves are hashed ``SHA-256(0x00 || leaf bytes)`` and interior nodes ``SHA-256(0x01 || left ||
right)`` (RFC 9162 section 2.1.1), so a leaf can never pass for a node. The tree over ``n`` leaves
splits at ``k``, the largest power of two below ``n``; every subtree this module ever needs is a
*perfect* one (``2**level`` leaves starting at a multiple of ``2**level``), which is what the
database keeps (``ledger_node``). Proof *generation* reads those nodes through a ``NodeSource``;
proof *verification* needs only hashes: it and the leaf and node hashes are
``imaging.offline_verify``'s (the RFC's algorithms 2.1.3.2 and 2.1.4.2), the one copy the
standalone ``docs/verify_ledger_proof.py`` and an audit bundle's ``verify_bundle.py`` run too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

# The hashes and the proof checks are the standalone verifiers' own, re-exported (the ledger calls them merkle's).
from imaging.offline_verify import ProofError, node_hash
from imaging.offline_verify import leaf_hash as leaf_hash
from imaging.offline_verify import verify_consistency as verify_consistency
from imaging.offline_verify import verify_inclusion as verify_inclusion

# (level, index) -> the hash of the perfect subtree over leaves [index * 2**level, (index + 1) * 2**level)
NodeSource = Callable[[Sequence[tuple[int, int]]], dict[tuple[int, int], bytes]]

EMPTY_ROOT = hashlib.sha256(b"").digest()


def _split(n: int) -> int:
    """The largest power of two strictly below ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def perfect_ranges(start: int, end: int) -> list[tuple[int, int]]:
    """The perfect subtrees, left to right, whose hashes make up MTH(D[start:end]).

    ``start`` must be where RFC 9162's recursion puts a subtree boundary (a multiple of a power
    of two at least ``end - start`` rounded up), which holds for every range the proofs ask for.
    """
    nodes: list[tuple[int, int]] = []
    while start < end:
        size = end - start
        level = size.bit_length() - 1
        if size == 1 << level and start % size == 0:
            nodes.append((level, start >> level))
            break
        k = _split(size)
        nodes.append(((k.bit_length() - 1), start // k))
        start += k
    return nodes


def fold(hashes: Sequence[bytes]) -> bytes:
    """The root of a range from its perfect subtrees (largest first): fold from the right."""
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def subtree_root(start: int, end: int, nodes: NodeSource) -> bytes:
    if end <= start:
        return EMPTY_ROOT
    wanted = perfect_ranges(start, end)
    found = nodes(wanted)
    return fold([found[w] for w in wanted])


def root_hash(size: int, nodes: NodeSource) -> bytes:
    """MTH of the first ``size`` leaves (the hash of the empty string for an empty tree)."""
    return subtree_root(0, size, nodes)


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The sibling ranges of RFC 9162's PATH(m, D[0:n]), leaf first."""
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
    return list(reversed(ranges))


def _consistency_ranges(old: int, new: int) -> list[tuple[int, int]]:
    """The ranges of RFC 9162's SUBPROOF(m, D[0:n], true), in proof order."""
    ranges: list[tuple[int, int]] = []
    lo, hi, complete = 0, new, True
    m = old
    while True:
        n = hi - lo
        if m == n:
            if not complete:
                ranges.append((lo, hi))
            break
        k = _split(n)
        if m <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo, m, complete = lo + k, m - k, False
    return list(reversed(ranges))


def _hashes_of(ranges: Sequence[tuple[int, int]], nodes: NodeSource) -> list[bytes]:
    wanted = [p for r in ranges for p in perfect_ranges(*r)]
    found = nodes(wanted)
    out = []
    for r in ranges:
        out.append(fold([found[p] for p in perfect_ranges(*r)]))
    return out


def inclusion_proof(index: int, size: int, nodes: NodeSource) -> list[bytes]:
    """PATH(index, D[0:size]): the audit path of leaf ``index`` in the tree of ``size`` leaves."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size} leaves")
    return _hashes_of(_inclusion_ranges(index, size), nodes)


def consistency_proof(old: int, new: int, nodes: NodeSource) -> list[bytes]:
    """PROOF(old, D[0:new]): that the tree of ``old`` leaves is a prefix of the tree of ``new``."""
    if not 0 <= old <= new:
        raise ProofError(f"a tree of {old} leaves cannot be a prefix of one of {new}")
    if old in (0, new):
        return []
    return _hashes_of(_consistency_ranges(old, new), nodes)


class Frontier:
    """The right edge of a growing tree: one perfect subtree hash per set bit of the size.

    ``push`` appends a leaf hash and returns the perfect nodes it completed (what the database
    stores), so the tree is kept incrementally in O(1) amortised hashes per entry.
    """

    def __init__(self, size: int = 0, nodes: Iterable[bytes] = ()) -> None:
        self.size = size
        self.nodes = list(nodes)  # largest (leftmost) first
        if len(self.nodes) != bin(size).count("1"):
            raise ValueError("a frontier needs one node per set bit of its size")

    def push(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        made = [(0, self.size, leaf)]
        node, index, level = leaf, self.size, 0
        while index & 1:
            node = node_hash(self.nodes.pop(), node)
            index >>= 1
            level += 1
            made.append((level, index, node))
        self.nodes.append(node)
        self.size += 1
        return made

    def absorb(self, count: int, nodes: Sequence[bytes]) -> None:
        """Append a whole range of ``count`` leaves given by its own right edge (largest first).

        The range must start at a multiple of its largest subtree, as verify's ranges do.
        """
        levels = [b for b in range(count.bit_length() - 1, -1, -1) if count >> b & 1]
        for level, node in zip(levels, nodes, strict=True):
            if self.size % (1 << level):
                raise ValueError(f"a subtree of 2**{level} leaves cannot start at leaf {self.size}")
            index = self.size >> level
            while index & 1:
                node = node_hash(self.nodes.pop(), node)
                index >>= 1
            self.nodes.append(node)
            self.size += 1 << level

    def root(self) -> bytes:
        return fold(self.nodes) if self.nodes else EMPTY_ROOT


def frontier_ranges(size: int) -> list[tuple[int, int]]:
    """The (level, index) of the perfect nodes on the right edge of a tree of ``size`` leaves."""
    return perfect_ranges(0, size) if size else []
