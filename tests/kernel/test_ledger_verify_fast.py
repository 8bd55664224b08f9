"""verify's batch path (verify_rows) against the reference canonical form, and its workers against one process."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from factory.kernel.ledger import hashing, merkle, verify_rows
from imaging.offline_verify import ENTRY_FIELDS, ENTRY_FIELDS_V2, ENTRY_FIELDS_V3

_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)  # any character but lone surrogates
_SCALAR = st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | _TEXT
_EVIDENCE = st.dictionaries(
    st.text(st.characters(max_codepoint=127), max_size=8),
    st.recursive(
        _SCALAR, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3), max_leaves=8
    ),
    max_size=5,
)


def _row(seq: int, evidence: dict[str, Any], version: int, text_value: str = "actor") -> tuple[Any, ...]:
    """A row in ROW_COLUMNS order with its evidence stored canonically and its hash by the reference form."""
    values: dict[str, Any] = {
        "seq": seq, "device_serial": f"SER-{seq}", "event": "receive", "from_state": None if seq % 2 else "received",
        "to_state": "received", "actor": text_value, "from_custodian": "factory", "to_custodian": "Revier 7 — Müller",
        "location": "site-1/bench \"2\"\\slot\t3", "occurred_at": "2026-12-06T14:00:00Z",
        "evidence": hashing.evidence_text(evidence), "prev_hash": "0" * 64, "device_id": seq * 3,
        "hash_version": version, "log": "site-1 — Süd", "log_seq": seq,
    }  # fmt: skip
    values["entry_hash"] = hashlib.sha256(hashing.entry_bytes(values)).hexdigest()
    return tuple(values[c] for c in verify_rows.ROW_COLUMNS)


def test_the_light_module_names_the_hashed_fields_of_each_version() -> None:
    assert verify_rows.VERSION_COLUMNS == {1: ENTRY_FIELDS, 2: ENTRY_FIELDS_V2, 3: ENTRY_FIELDS_V3}
    assert hashing.ROW_COLUMNS is verify_rows.ROW_COLUMNS
    for version, document in verify_rows.DOCUMENTS.items():
        keys = list(document(_row(1, {}, version), None))  # type: ignore[arg-type]
        assert keys == sorted(verify_rows.VERSION_COLUMNS[version])  # already in RFC 8785 order


@settings(max_examples=150, deadline=None)
@given(evidence=st.lists(_EVIDENCE, min_size=1, max_size=6), version=st.sampled_from([1, 2, 3]), actor=_TEXT)
def test_spliced_bytes_are_the_reference_canonical_bytes(
    evidence: list[dict[str, Any]], version: int, actor: str
) -> None:
    rows = [_row(i + 1, ev, version, actor) for i, ev in enumerate(evidence)]
    expected = [hashing.entry_bytes(dict(zip(verify_rows.ROW_COLUMNS, r, strict=True))) for r in rows]
    spliced = list(verify_rows.canonical_rows(rows, version))
    for row, got, want in zip(rows, spliced, expected, strict=True):
        stored = row[verify_rows.EVIDENCE].encode()
        # The batch path declines only a text orjson would order differently (non-ASCII member names
        # beyond the BMP: RFC 8785 orders by UTF-16 unit); whatever it splices is the reference's bytes.
        sorted_by_orjson = orjson.dumps(orjson.loads(stored), option=orjson.OPT_SORT_KEYS)
        assert got == want if sorted_by_orjson == stored else got is None
    leaves = verify_rows.batch_leaves(rows, version)
    if None not in spliced:
        assert leaves == [merkle.leaf_hash(b) for b in expected]
    else:
        assert leaves is None


@pytest.mark.parametrize(
    "stored",
    [
        '{"reason":"nothing wrong","reason":"cracked screen"}',  # a duplicate member
        '{"reason": "cracked screen"}',  # valid JSON but not its canonical text
        '{"n":9007199254740993}',  # beyond RFC 8785's integers
        '["not", "an object"]',
        '{"a":1} trailing',
    ],
)
def test_evidence_the_batch_path_cannot_prove_canonical_goes_to_the_per_row_path(stored: str) -> None:
    row = list(_row(1, {"reason": "cracked screen"}, 2))
    row[verify_rows.EVIDENCE] = stored
    spliced = hashlib.sha256(stored.encode()).hexdigest()  # whatever hash a forger stores, the batch refuses
    row[verify_rows.HASH] = spliced
    assert verify_rows.batch_leaves([tuple(row)], 2) is None
    assert next(iter(verify_rows.canonical_rows([tuple(row)], 2))) is None


def test_a_float_in_an_integer_column_goes_to_the_per_row_path() -> None:
    row = list(_row(1, {}, 2))
    row[verify_rows.ROW_COLUMNS.index("device_id")] = 1e21  # SQLite keeps a REAL in an INTEGER column
    assert verify_rows.batch_leaves([tuple(row)], 2) is None


def test_the_batch_path_subtrees_match_the_tree() -> None:
    leaves = [hashlib.sha256(str(i).encode()).digest() for i in range(300)]
    levels = verify_rows.subtree_levels(leaves)
    for count in (1, 2, 3, 7, 64, 255, 300):
        frontier = merkle.Frontier()
        for leaf in leaves[:count]:
            frontier.push(leaf)
        assert verify_rows.prefix_edge(levels, count) == frontier.nodes
        edge = verify_rows.Edge()
        edge.absorb(count, verify_rows.prefix_edge(levels, count))
        assert merkle.fold(edge.nodes) == frontier.root()
