"""The fast canonical path produces exactly the bytes of the reference RFC 8785 implementation."""

from __future__ import annotations

import hashlib

import orjson
import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from factory.kernel.canonical import canonical_bytes

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
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


# Where ECMAScript's number form differs from Python's (exponent sign and range, trailing .0, -0).
EDGE_FLOATS = (1.5e-7, 1e-6, 1e-7, 1e21, 1e20, 123456789012345680000.0, 100.0, -0.0, 0.0, 5e-324,
               1.7976931348623157e308, 0.1 + 0.2, -2.5, 1 / 3, 4.35, 2**53 + 0.0, 2.0**70)  # fmt: skip


@pytest.mark.parametrize("number", EDGE_FLOATS)
def test_floats_are_written_as_the_reference_writes_them(number: float) -> None:
    value = {"x": number, "nested": [number, {"y": (number, "é")}], "b": "\x1f"}
    assert canonical_bytes(value) == rfc8785.dumps(value)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=8), st.lists(st.floats(allow_nan=False, allow_infinity=False)), max_size=4))
def test_documents_with_floats_match_the_reference(value: dict[str, list[float]]) -> None:
    try:
        expected = rfc8785.dumps(value)
    except Exception:  # a lone surrogate in a key: the reference refuses, so must we
        with pytest.raises(Exception):  # noqa: B017  (whatever the reference raised)
            canonical_bytes(value)
        return
    assert canonical_bytes(value) == expected


@pytest.mark.parametrize("number", [float("nan"), float("inf"), -float("inf")])
def test_a_float_jcs_cannot_write_is_refused_as_the_reference_refuses_it(number: float) -> None:
    with pytest.raises(rfc8785.CanonicalizationError):
        canonical_bytes({"ok": 1.5, "bad": [number]})


def test_a_certificate_digest_is_taken_over_the_reference_bytes() -> None:
    from imaging.certificate_envelope import canonical_bytes as certificate_bytes

    doc = {"throughput_mib_s": 512.25, "duration_s": 0.000001, "bytes": 2**40, "commands": [{"argv": ["dd"]}]}
    assert certificate_bytes(doc) == rfc8785.dumps(doc)


@pytest.mark.parametrize("version", [1, 2, 3])
def test_verify_row_bytes_equal_the_reference_entry_hash(version: int) -> None:
    from factory.kernel.ledger.hashing import ROW_COLUMNS, entry_hash, row_bytes

    base = {
        "seq": 7, "device_serial": "SN-1", "event": "receive", "from_state": None, "to_state": "received",
        "actor": "tech", "from_custodian": "officer:1", "to_custodian": "factory", "location": "é-site",
        "occurred_at": "2026-11-22T10:00:00.000000Z", "evidence": '{"media":["A"],"new_stock":false}',
        "prev_hash": "0" * 64, "device_id": 3, "hash_version": version, "entry_hash": None, "log": "site",
        "log_seq": 7,
    }  # fmt: skip
    for evidence in ('{"media":["A"],"new_stock":false}', '{"ratio":0.25,"n":-3,"nested":{"z":[1.5e-7,null]}}', "{}"):
        row = {**base, "evidence": evidence}
        values = tuple(row[k] for k in ROW_COLUMNS)
        assert hashlib.sha256(row_bytes(values)).hexdigest() == entry_hash(row)


ledger_text = st.one_of(st.none(), st.text(max_size=30))


@settings(max_examples=500, deadline=None)
@given(
    st.lists(ledger_text, min_size=10, max_size=10),
    st.integers(min_value=1, max_value=2**53 - 1),
    values,
    st.integers(min_value=1, max_value=2**53 - 1),
    st.sampled_from([1, 2]),
)
def test_spliced_bytes_equal_the_reference_for_canonical_evidence(
    texts: list[str | None], seq: int, evidence: object, device_id: int, version: int
) -> None:
    """The verify fast path (evidence spliced in as stored) gives the reference bytes of the entry, or declines."""
    from factory.kernel.ledger.hashing import HASHED_FIELDS, spliced_bytes

    try:
        evidence_bytes = rfc8785.dumps(evidence)
        fields = (seq, *texts[:9], evidence_bytes.decode(), texts[9], device_id, version, None)
        doc = dict(zip(HASHED_FIELDS, fields[:12], strict=True)) | {"evidence": evidence}
        if version == 2:
            doc |= {"device_id": device_id, "hash_version": 2}
        expected = rfc8785.dumps(doc)
    except Exception:  # values the reference refuses (lone surrogates) are not ledger content
        return
    got = spliced_bytes(fields)
    assert got is None or got == expected
    if (
        isinstance(evidence, dict)
        and canonical_bytes(evidence) == evidence_bytes
        # orjson sorts keys by code point, RFC 8785 by UTF-16 unit: they differ when a key outside
        # the BMP meets one at U+E000 or above, and there the fast path rightly declines
        and orjson.dumps(evidence, option=orjson.OPT_SORT_KEYS) == evidence_bytes
        and all(t is None or isinstance(t, str) for t in texts)
    ):
        assert got == expected  # canonical evidence takes the fast path


def test_spliced_bytes_decline_duplicate_members_and_extra_text() -> None:
    from factory.kernel.ledger.hashing import spliced_bytes

    base = (1, "S", "receive", None, "received", "a", "", "", "", "t", "{}", "0" * 64, 1, 2, None)
    for evidence in ('{"a":1,"a":2}', ' {"a":1}', '{"a":1}x', '{"b":1,"a":2}'):
        assert spliced_bytes((*base[:10], evidence, *base[11:])) is None


def test_keys_that_sort_differently_in_utf16_decline_the_fast_path_and_hash_by_rfc8785() -> None:
    """U+10000 sorts before U+E000 in UTF-16 units (RFC 8785) but after it by code point (orjson):
    the fast path declines and the general path gives the RFC 8785 bytes (found by Hypothesis)."""
    from factory.kernel.ledger.hashing import HASHED_FIELDS, row_bytes, spliced_bytes

    evidence = {"\U00010000": None, "\ue000": None}
    stored = rfc8785.dumps(evidence).decode()
    fields = (1, *([None] * 9), stored, None, 7, 2, None)
    doc = dict(zip(HASHED_FIELDS, fields[:12], strict=True)) | {"evidence": evidence}
    doc |= {"device_id": 7, "hash_version": 2}
    assert spliced_bytes(fields) is None
    assert row_bytes(fields) == rfc8785.dumps(doc)
