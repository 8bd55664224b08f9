"""The fast canonical path produces exactly the bytes of the reference RFC 8785 implementation."""

from __future__ import annotations

import hashlib

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from factory.kernel.canonical import canonical_bytes

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1), st.text(max_size=40)
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=12), inner, max_size=6)),
    max_leaves=30,
)


@pytest.mark.slow  # 2000 generated values against the reference encoder
@settings(max_examples=2000, deadline=None)
@given(values)
def test_fast_path_matches_reference(value: object) -> None:
    try:
        expected = rfc8785.dumps(value)
    except Exception:  # the reference refuses (e.g. lone surrogates): so must we
        try:
            canonical_bytes(value)
        except Exception:
            return
        raise AssertionError(f"accepted a value the reference refuses: {value!r}") from None
    assert canonical_bytes(value) == expected


def test_control_characters_and_unicode() -> None:
    value = {"b": '\x00\x08\t\n\x0c\r\x1f\x7f\u2028é😀"\\/', "a": [1, -1, 0, True, None]}
    assert canonical_bytes(value) == rfc8785.dumps(value)


def test_floats_use_the_reference() -> None:
    assert canonical_bytes({"x": 1.5e-7}) == rfc8785.dumps({"x": 1.5e-7})


def test_verify_fast_row_hash_equals_the_reference_entry_hash() -> None:
    from factory.kernel.ledger.hashing import HASHED_FIELDS, entry_hash, hash_row

    base = {
        "seq": 7, "device_serial": "SN-1", "event": "receive", "from_state": None, "to_state": "received",
        "actor": "tech", "from_custodian": "officer:1", "to_custodian": "factory", "location": "é-site",
        "occurred_at": "2026-11-22T10:00:00.000000Z", "evidence": '{"media":["A"],"new_stock":false}',
        "prev_hash": "0" * 64,
    }  # fmt: skip
    for evidence in ('{"media":["A"],"new_stock":false}', '{"ratio":0.25,"n":-3,"nested":{"z":[1.5e-7,null]}}', "{}"):
        row = {**base, "evidence": evidence}
        values = tuple(row[k] for k in HASHED_FIELDS)
        assert hash_row(values) == entry_hash(row)


ledger_text = st.one_of(st.none(), st.text(max_size=30))


@settings(max_examples=500, deadline=None)
@given(st.lists(ledger_text, min_size=10, max_size=10), st.integers(min_value=1, max_value=2**53 - 1), values)
def test_spliced_hash_equals_the_reference_for_canonical_evidence(
    texts: list[str | None], seq: int, evidence: object
) -> None:
    """The verify fast path (evidence spliced in as stored) gives the reference hash of the entry."""
    from factory.kernel.ledger.hashing import HASHED_FIELDS, spliced_hash

    try:
        evidence_bytes = rfc8785.dumps(evidence)
        fields = (seq, *texts[:9], evidence_bytes.decode(), texts[9])
        doc = dict(zip(HASHED_FIELDS, fields, strict=True)) | {"evidence": evidence}
        expected = hashlib.sha256(rfc8785.dumps(doc)).hexdigest()
    except Exception:  # values the reference refuses (lone surrogates) are not ledger content
        return
    assert spliced_hash(fields) == expected
