"""Published RFC 6962 / RFC 9162 test vectors and rejection cases, through our tree, proofs and verifiers.

Sources (data, not code: hash values and leaf inputs):

* The reference tree of eight leaves, its roots at sizes 1 to 8, audit paths and consistency proofs:
  google/certificate-transparency ``cpp/merkletree/merkle_tree_test.cc`` (``kInputs``,
  ``kSHA256Roots``, ``kSHA256Paths``, ``kSHA256Proofs``; its leaf numbers are 1-based, ours are
  leaf indices), and the same vectors in transparency-dev/merkle ``proof/verify_test.go``, which
  adds the consistency proof 6 -> 7.
* The proofs that must be rejected: transparency-dev/merkle ``proof/verify_test.go``
  (``corruptInclusionProof``, ``corruptConsistencyProof``, ``TestVerifyInclusionSingleEntry``,
  ``TestVerifyConsistency``) and its ``testdata/inclusion`` and ``testdata/consistency`` cases.

The server verifies with ``merkle.verify_inclusion``/``verify_consistency`` and the auditors'
``docs/verify_ledger_proof.py`` with ``offline_verify.inclusion_root``; both are checked here, and
the docs script itself, loaded from its file as an auditor runs it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from factory.kernel.ledger import merkle
from imaging import offline_verify

H = bytes.fromhex
EMPTY = H("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")  # SHA-256(""), MTH({})
SOME = H("abacaba000000000000000000000000000000000000000000060061e00123456")  # verify_test.go's sha256SomeHash
INPUTS = [
    H(x) for x in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f")
]
ROOTS = [
    H(x)
    for x in (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]
_P1 = "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"
_P2 = "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"
_P3 = "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"
_Q1 = "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
_Q2 = "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"
_C6 = "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"
# (leaf index, tree size) -> audit path; kSHA256Paths' {1,8}, {6,8}, {3,3}, {2,5} and {1,1}
PATHS = {
    (0, 8): [_P1, _P2, _P3],
    (5, 8): [_Q1, _Q2, ROOTS[3].hex()],
    (2, 3): [ROOTS[1].hex()],
    (1, 5): [ROOTS[0].hex(), _P2, _Q1],
    (0, 1): [],
}
# (old size, new size) -> consistency proof; kSHA256Proofs and verify_test.go's 6 -> 7
CONSISTENCY = {
    (1, 1): [],
    (1, 8): [_P1, _P2, _P3],
    (6, 8): [_C6, _Q2, ROOTS[3].hex()],
    (2, 5): [_P2, _Q1],
    (6, 7): [_C6, "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f", ROOTS[3].hex()],
}


def _stored_tree() -> dict[tuple[int, int], bytes]:
    """The perfect nodes the append path stores for the eight inputs (``Frontier.push``)."""
    edge, stored = merkle.Frontier(), {}
    for x in INPUTS:
        stored.update({(lv, ix): h for lv, ix, h in edge.push(merkle.leaf_hash(x))})
    return stored


NODES = _stored_tree()


def source(wanted: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    return {w: NODES[w] for w in wanted}


@pytest.fixture(scope="module")
def docs_verifier() -> Iterator[ModuleType]:
    """``docs/verify_ledger_proof.py`` loaded from its file (it imports ``offline_verify`` top-level)."""
    script = Path(__file__).resolve().parents[2] / "docs" / "verify_ledger_proof.py"
    saved = list(sys.path)
    spec = importlib.util.spec_from_file_location("docs_verify_ledger_proof_vectors", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.path[:] = saved
    yield module


def test_the_roots_of_the_reference_tree_at_every_size() -> None:
    edge = merkle.Frontier()
    assert edge.root() == EMPTY and merkle.root_hash(0, source) == EMPTY == merkle.EMPTY_ROOT
    for size, (x, root) in enumerate(zip(INPUTS, ROOTS, strict=True), start=1):
        edge.push(merkle.leaf_hash(x))
        assert edge.root() == root
        assert merkle.root_hash(size, source) == root


@pytest.mark.parametrize(("index", "size"), list(PATHS))
def test_the_reference_audit_paths_are_ours_and_verify(index: int, size: int, docs_verifier: ModuleType) -> None:
    path, root, leaf = [H(p) for p in PATHS[(index, size)]], ROOTS[size - 1], merkle.leaf_hash(INPUTS[index])
    assert merkle.inclusion_proof(index, size, source) == path
    merkle.verify_inclusion(index, size, leaf, path, root)
    assert offline_verify.inclusion_root(index, size, leaf, path) == root
    assert docs_verifier._in_signed_log(index, size, root, INPUTS[index], [p.hex() for p in path])


@pytest.mark.parametrize(("old", "new"), list(CONSISTENCY))
def test_the_reference_consistency_proofs_are_ours_and_verify(old: int, new: int) -> None:
    proof = [H(p) for p in CONSISTENCY[(old, new)]]
    assert merkle.consistency_proof(old, new, source) == proof
    merkle.verify_consistency(old, new, ROOTS[old - 1], ROOTS[new - 1], proof)


def _flip(proof: list[bytes], k: int, bit: int) -> list[bytes]:
    return [*proof[:k], bytes([proof[k][0] ^ bit]) + proof[k][1:], *proof[k + 1 :]]


def _corrupt_inclusions(i: int, n: int, p: list[bytes], root: bytes, leaf: bytes) -> Iterator[tuple]:
    """verify_test.go's corruptInclusionProof: every probe must be rejected."""
    yield from [(i - 1, n, leaf, p, root), (i + 1, n, leaf, p, root), (i ^ 2, n, leaf, p, root)]  # wrong index
    yield from [(i, n * 2, leaf, p, root), (i, n // 2, leaf, p, root)]  # wrong tree size
    yield from [(i, n, b"WrongLeaf", p, root), (i, n, leaf, p, EMPTY), (i, n, leaf, p, SOME)]  # wrong leaf, root
    yield from [(i, n, leaf, [*p, b""], root), (i, n, leaf, [*p, root], root)]  # trailing garbage, root
    yield from [(i, n, leaf, [b"", *p], root), (i, n, leaf, [root, *p], root)]  # preceding garbage, root
    yield from [(i, n, leaf, _flip(p, k, 8), root) for k in range(len(p))]  # one bit of one hash
    if p:
        yield (i, n, leaf, p[:-1], root)  # a hash removed
    if len(p) > 1:
        yield (i, n, leaf, [p[0], SOME, *p[1:]], root)  # a hash inserted


def _rejected_by_every_verifier(i: int, n: int, leaf: bytes, path: list[bytes], root: bytes) -> bool:
    with pytest.raises(offline_verify.ProofError):
        merkle.verify_inclusion(i, n, leaf, path, root)
    try:
        return offline_verify.inclusion_root(i, n, leaf, path) != root
    except offline_verify.ProofError:
        return True


@pytest.mark.parametrize(("index", "size"), list(PATHS))
def test_corrupted_audit_paths_are_rejected(index: int, size: int, docs_verifier: ModuleType) -> None:
    path, root, leaf = [H(p) for p in PATHS[(index, size)]], ROOTS[size - 1], merkle.leaf_hash(INPUTS[index])
    for i, n, probe_leaf, probe, probe_root in _corrupt_inclusions(index, size, path, root, leaf):
        if i >= 0 and (i, n, probe_leaf, probe, probe_root) != (index, size, leaf, path, root):
            assert _rejected_by_every_verifier(i, n, probe_leaf, probe, probe_root), (i, n, len(probe))
            if probe_leaf == leaf:  # the auditors' script hashes the entry itself: same verdict
                hexes = [h.hex() for h in probe]
                assert not docs_verifier._in_signed_log(i, n, probe_root, INPUTS[index], hexes)


def test_impossible_inclusions_are_rejected() -> None:
    """TestVerifyInclusion's probes (index, size) (0, 0), (0, 1), (1, 0), (2, 1) with no path, and
    TestVerifyInclusionSingleEntry: a hash of the wrong size is refused even where leaf == root."""
    leaf = merkle.leaf_hash(b"data")
    for index, size in ((0, 0), (0, 1), (1, 0), (2, 1)):
        for probe_leaf, root in ((SOME, b""), (b"", EMPTY), (SOME, EMPTY)):
            assert _rejected_by_every_verifier(index, size, probe_leaf, [], root)
    merkle.verify_inclusion(0, 1, leaf, [], leaf)  # a one-leaf tree's root is its leaf hash
    for probe_leaf, root in ((leaf, b""), (b"", leaf), (b"", b"")):
        assert _rejected_by_every_verifier(0, 1, probe_leaf, [], root)
    with pytest.raises(offline_verify.ProofError):
        merkle.inclusion_proof(8, 8, source)  # index >= size: no proof is made either


def _corrupt_consistencies(m: int, n: int, r1: bytes, r2: bytes, p: list[bytes]) -> Iterator[tuple]:
    """verify_test.go's corruptConsistencyProof: every probe must be rejected."""
    yield from [(m - 1, n, r1, r2, p), (m + 1, n, r1, r2, p), (m ^ 2, n, r1, r2, p)]  # wrong old size
    yield from [(m, n * 2, r1, r2, p), (m, n // 2, r1, r2, p)]  # wrong new size
    yield from [(m, n, b"WrongRoot", r2, p), (m, n, r1, b"WrongRoot", p), (m, n, r2, r1, p)]  # wrong, swapped roots
    yield (m, n, r1, r2, [])  # empty proof
    yield from [(m, n, r1, r2, [*p, b""]), (m, n, r1, r2, [*p, r1]), (m, n, r1, r2, [*p, r2])]  # trailing
    yield from [(m, n, r1, r2, [b"", *p]), (m, n, r1, r2, [r1, *p]), (m, n, r1, r2, [r2, *p])]  # preceding
    yield from [(m, n, r1, r2, [p[0], *p]), (m, n, r1, r2, p[:-1])]  # proof[0] twice, truncated
    yield from [(m, n, r1, r2, _flip(p, k, 16)) for k in range(len(p))]  # one bit of one hash


@pytest.mark.parametrize(("old", "new"), [k for k in CONSISTENCY if CONSISTENCY[k]])
def test_corrupted_consistency_proofs_are_rejected(old: int, new: int) -> None:
    proof = [H(p) for p in CONSISTENCY[(old, new)]]
    for m, n, r1, r2, probe in _corrupt_consistencies(old, new, ROOTS[old - 1], ROOTS[new - 1], proof):
        with pytest.raises(offline_verify.ProofError):
            merkle.verify_consistency(m, n, r1, r2, probe)


ONE, TWO = hashlib.sha256(b"one").digest(), hashlib.sha256(b"two").digest()


@pytest.mark.parametrize(
    ("old", "new", "old_root", "new_root", "proof"),
    [
        (0, 0, ONE, TWO, []),  # TestVerifyConsistency: equal sizes, roots differ
        (1, 1, ONE, TWO, []),
        (1, 0, ONE, TWO, []),  # time travel to the past
        (2, 1, ONE, TWO, []),
        (1, 2, ONE, TWO, []),  # an empty proof between different sizes
        (0, 0, EMPTY, EMPTY, [EMPTY]),  # roots match but the proof is not empty
        (0, 1, EMPTY, EMPTY, [EMPTY]),
        (1, 1, EMPTY, EMPTY, [EMPTY]),
        (0, 1, ONE, TWO, []),  # testdata/consistency/additional: an "empty" tree whose root is not MTH({})
        (0, 0, ONE, ONE, []),
        (1, 1, b"don't care 2", b"don't care 2", []),  # a root that is not a SHA-256 hash
        (1, 2, ROOTS[0] + merkle.leaf_hash(INPUTS[1]), ROOTS[1], [b""]),  # a 64-byte root l || r: node(l, r)
    ],
    ids=[
        "equal-0-roots-differ",
        "equal-1-roots-differ",
        "1-to-0",
        "2-to-1",
        "empty-proof",
        "0-0-proof",
        "0-1-proof",
        "1-1-proof",
        "0-1-not-empty-root",
        "0-0-not-empty-root",
        "root-not-sha256",
        "64-byte-root",
    ],
)
def test_impossible_consistency_proofs_are_rejected(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> None:
    with pytest.raises(offline_verify.ProofError):
        merkle.verify_consistency(old, new, old_root, new_root, proof)


def test_trivial_consistency_needs_no_proof() -> None:
    """The empty tree (root SHA-256("")) is a prefix of every tree; a tree is a prefix of itself."""
    for new in range(9):
        merkle.verify_consistency(0, new, EMPTY, ROOTS[new - 1] if new else EMPTY, [])
        assert merkle.consistency_proof(0, new, source) == []
    for size in range(1, 9):
        merkle.verify_consistency(size, size, ROOTS[size - 1], ROOTS[size - 1], [])
        assert merkle.consistency_proof(size, size, source) == []


def test_hashes_of_another_length_cannot_split_or_join_nodes() -> None:
    """Before the size check a 64-byte "leaf" l || r with an empty path hash verified as the node
    of l and r (SHA-256(0x01 || l || r || b"")): a malformed proof accepted. Now refused."""
    l_, r_ = merkle.leaf_hash(INPUTS[0]), merkle.leaf_hash(INPUTS[1])
    assert merkle.node_hash(l_, r_) == ROOTS[1]
    assert _rejected_by_every_verifier(0, 2, l_ + r_, [b""], ROOTS[1])
    # and a size-1 "root" l || r as a prefix of the size-2 tree, the same way
    with pytest.raises(offline_verify.ProofError):
        merkle.verify_consistency(1, 2, l_ + r_, ROOTS[1], [b""])
