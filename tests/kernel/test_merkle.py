"""RFC 9162 tree, inclusion and consistency proofs against a straightforward recursive reference."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from factory.kernel.ledger import merkle


def ref_mth(d: list[bytes]) -> bytes:
    """MTH(D[n]) exactly as RFC 9162 section 2.1.1 writes it."""
    n = len(d)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = 1 << ((n - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:])).digest()


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]), RFC 9162 section 2.1.3.1."""
    n = len(d)
    if n <= 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b), RFC 9162 section 2.1.4.1."""
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def source(d: list[bytes]) -> merkle.NodeSource:
    """Perfect nodes computed by the reference, as the database would hold them."""
    return lambda wanted: {(lv, ix): ref_mth(d[ix << lv : (ix + 1) << lv]) for lv, ix in wanted}


def leaves(n: int) -> list[bytes]:
    return [f"entry-{i}".encode() for i in range(n)]


@pytest.mark.parametrize("n", range(0, 34))
def test_every_proof_of_small_trees_equals_the_reference(n: int) -> None:
    d = leaves(n)
    root = ref_mth(d)
    assert merkle.root_hash(n, source(d)) == root
    edge = merkle.Frontier()
    made = {}
    for x in d:
        made.update({(lv, ix): h for lv, ix, h in edge.push(merkle.leaf_hash(x))})
    assert edge.root() == root
    assert made == {key: h for key, h in source(d)(list(made)).items()}  # every stored node is right
    for i in range(n):
        path = merkle.inclusion_proof(i, n, source(d))
        assert path == ref_path(i, d)
        merkle.verify_inclusion(i, n, merkle.leaf_hash(d[i]), path, root)
    for old in range(n + 1):
        proof = merkle.consistency_proof(old, n, source(d))
        assert proof == ([] if old in (0, n) else ref_subproof(old, d, True))
        merkle.verify_consistency(old, n, ref_mth(d[:old]), root, proof)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=3000), st.data())
def test_random_proofs_verify_and_fail_when_anything_changes(n: int, data: st.DataObject) -> None:
    d = leaves(n)
    root = ref_mth(d)
    i = data.draw(st.integers(min_value=0, max_value=n - 1))
    path = merkle.inclusion_proof(i, n, source(d))
    merkle.verify_inclusion(i, n, merkle.leaf_hash(d[i]), path, root)
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(i, n, merkle.leaf_hash(d[i] + b"!"), path, root)
    if n > 1:
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion((i + 1) % n, n, merkle.leaf_hash(d[i]), path, root)
    if path:
        k = data.draw(st.integers(min_value=0, max_value=len(path) - 1))
        bent = [*path[:k], bytes(32), *path[k + 1 :]]
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(i, n, merkle.leaf_hash(d[i]), bent, root)
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(i, n, merkle.leaf_hash(d[i]), path[:-1], root)
    old = data.draw(st.integers(min_value=1, max_value=n))
    proof = merkle.consistency_proof(old, n, source(d))
    assert proof == ([] if old == n else ref_subproof(old, d, True))
    merkle.verify_consistency(old, n, ref_mth(d[:old]), root, proof)
    if old < n:
        other = ref_mth([*d[: old - 1], b"forged"])
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(old, n, other, root, proof)
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(old, n, ref_mth(d[:old]), ref_mth([*d[:-1], b"forged"]), proof)


@pytest.mark.parametrize("step", [1, 2, 8, 64])
def test_ranges_joined_in_order_give_the_whole_root(step: int) -> None:
    """verify's parallel path: aligned ranges' right edges absorbed in order give the tree's root."""
    d = [merkle.leaf_hash(x) for x in leaves(1000)]
    whole = merkle.Frontier()
    for x in d:
        whole.push(x)
    joined = merkle.Frontier()
    for lo in range(0, len(d), step):
        part = merkle.Frontier()
        for x in d[lo : lo + step]:
            part.push(x)
        joined.absorb(part.size, part.nodes)
    assert joined.root() == whole.root() == ref_mth(leaves(1000))


def test_impossible_requests_are_refused() -> None:
    with pytest.raises(merkle.ProofError):
        merkle.inclusion_proof(5, 5, source(leaves(5)))
    with pytest.raises(merkle.ProofError):
        merkle.consistency_proof(6, 5, source(leaves(5)))
