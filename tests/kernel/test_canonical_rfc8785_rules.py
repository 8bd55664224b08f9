"""Our canonical JSON (both paths) against the rules of RFC 8785 (JCS) itself, not only against the
``rfc8785`` package: vectors written here for each rule, plus the RFC's own short examples, cited.

Every vector runs through ``canonical_bytes`` (which picks the orjson fast path or the reference),
through the reference ``rfc8785.dumps`` alone, and through the orjson fast path forced (where it
accepts the value; it must decline, not misorder, member names outside ASCII). The expected bytes
were checked against ECMAScript itself (node's ``JSON.stringify``, which RFC 8785 section 3.2.2
defers to) and the RFC author's JCS implementation.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import orjson
import pytest
import rfc8785

from imaging import canonical_json
from imaging.canonical_json import canonical_bytes, in_fast_domain
from imaging.offline_verify import DuplicateMemberError, loads


def fast_path(value: Any) -> bytes | None:
    """The orjson path forced, without the domain check; None where it declines the value."""
    try:
        return orjson.dumps(canonical_json._with_reference_floats(value), option=canonical_json._SORT)
    except canonical_json._Outside:
        return None


def assert_canonical(value: Any, expected: bytes) -> None:
    assert canonical_bytes(value) == expected
    assert rfc8785.dumps(value) == expected
    forced = fast_path(value)
    assert forced is None or forced == expected


def assert_refused(value: Any, error: type[rfc8785.CanonicalizationError] = rfc8785.CanonicalizationError) -> None:
    with pytest.raises(error):
        canonical_bytes(value)
    with pytest.raises(ValueError):  # the reference refuses too (UnicodeEncodeError for a bad name)
        rfc8785.dumps(value)


# --- the RFC's own examples ---------------------------------------------------------------------


def test_rfc8785_section_3_2_2_example() -> None:
    """RFC 8785 section 3.2.2: its example JSON text and the canonical form the RFC gives for it."""
    text = r"""{
      "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
      "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
      "literals": [null, true, false]
    }"""
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert_canonical(json.loads(text), expected.encode("utf-8"))
    assert_canonical(loads(text), expected.encode("utf-8"))  # as the auditor's verifier parses it


# RFC 8785 Appendix B, "Number Serialization Samples": IEEE 754 bit pattern -> JCS text.
APPENDIX_B = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),  # minus zero
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),  # round to even
]


def double(bits: str) -> float:
    return float(struct.unpack(">d", bytes.fromhex(bits))[0])


@pytest.mark.parametrize(("bits", "text"), APPENDIX_B)
def test_rfc8785_appendix_b_number_samples(bits: str, text: str) -> None:
    number = double(bits)
    assert_canonical(number, text.encode())
    assert_canonical({"n": [number]}, b'{"n":[' + text.encode() + b"]}")


@pytest.mark.parametrize("bits", ["7fffffffffffffff", "7ff0000000000000", "fff0000000000000"])
def test_rfc8785_appendix_b_nan_and_infinity_are_refused(bits: str) -> None:
    assert_refused({"ok": 0.5, "n": [double(bits)]}, rfc8785.FloatDomainError)


# --- numbers (section 3.2.2.3: ECMAScript Number serialisation) ---------------------------------

OUR_NUMBERS = [
    (1e20, "100000000000000000000"),  # integral up to 21 digits is written out
    (1e21, "1e+21"),  # from 21 digits an exponent, with its sign
    (1.5e300, "1.5e+300"),
    (1e-6, "0.000001"),  # down to 1e-6 a plain fraction
    (1e-7, "1e-7"),  # below it an exponent, no leading zero in it
    (-2.5e-8, "-2.5e-8"),
    (0.1 + 0.2, "0.30000000000000004"),  # shortest round trip, not 17 digits
    (123.0, "123"),  # no ".0"
    (-0.0, "0"),
    (12345678.9, "12345678.9"),
    (2.0**54, "18014398509481984"),
    (0.5, "0.5"),
]


@pytest.mark.parametrize(("number", "text"), OUR_NUMBERS)
def test_floats_take_the_ecmascript_form(number: float, text: str) -> None:
    assert_canonical([number, "x"], b"[" + text.encode() + b',"x"]')


@pytest.mark.parametrize("number", [2**53 - 1, -(2**53 - 1), 0, -1, 4096])
def test_integers_within_the_exact_range_are_written_as_they_are(number: int) -> None:
    assert_canonical({"bytes": number}, b'{"bytes":' + str(number).encode() + b"}")


@pytest.mark.parametrize("number", [2**53, -(2**53), 2**53 + 1, 10**21])
def test_integers_beyond_the_exact_range_are_refused_with_a_typed_error(number: int) -> None:
    """RFC 8785 reads 9007199254740993 as the double 9007199254740992 (section 3.2.2.3); we refuse
    integers beyond +/-(2**53 - 1) instead, as ``rfc8785`` and docs/certificate-format.md do."""
    assert_refused({"bytes": number}, rfc8785.IntegerDomainError)


def test_a_double_beyond_2_53_is_the_nearest_double_as_rfc8785_reads_it() -> None:
    assert_canonical(float(9007199254740993), b"9007199254740992")


@pytest.mark.xfail(
    strict=True,
    raises=rfc8785.IntegerDomainError,
    reason="RFC 8785 difference kept on purpose: JCS writes an integral double >= 2**53 without a "
    "fraction (20000000000000000); a Python JSON parser reads that back as an int, which rfc8785 "
    "(the canonicaliser auditors use) refuses, so such a value never re-verifies. Accepting it would "
    "change no signed digest but would make us disagree with rfc8785; the certificate builders "
    "refuse such numbers instead (coverage is in (0, 1], a particle size below 2**53).",
)
def test_jcs_integral_text_of_a_double_beyond_2_53_canonicalises_again() -> None:
    once = canonical_bytes({"particle_size_mm": 2e16})
    assert once == b'{"particle_size_mm":20000000000000000}'
    assert canonical_bytes(json.loads(once)) == once


# --- strings (section 3.2.2.2) ------------------------------------------------------------------

SHORT_ESCAPES = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r", '"': '\\"', "\\": "\\\\"}


@pytest.mark.parametrize("code", range(0x20))
def test_control_characters_are_escaped_short_or_as_lowercase_hex(code: int) -> None:
    char = chr(code)
    escaped = SHORT_ESCAPES.get(char, f"\\u{code:04x}")
    assert_canonical({"k": f"a{char}z"}, f'{{"k":"a{escaped}z"}}'.encode())
    assert_canonical({f"k{char}": 1}, f'{{"k{escaped}":1}}'.encode())  # member names too


def test_quote_and_backslash_are_escaped_and_nothing_else_is() -> None:
    text = '"\\/\x7f\x80\u00e9\u2028\u2029\u20ac\ufeff\uffff\U0001f600</script>'
    expected = '"\\"\\\\/\x7f\x80\u00e9\u2028\u2029\u20ac\ufeff\uffff\U0001f600</script>"'
    assert_canonical(text, expected.encode("utf-8"))  # "/" and DEL as they are, non-ASCII as UTF-8


def test_combining_characters_are_not_normalised() -> None:
    assert_canonical("A\u030a", '"A\u030a"'.encode())  # not U+00C5: JCS does no Unicode normalisation


@pytest.mark.parametrize(
    "value",
    [
        "\ud800",
        "a\udfffb",
        "\ud83d\ude00",  # a surrogate pair held as two code points is two lone surrogates
        ["ok", "\udc00"],
        {"k": "\ud83d"},
        {"\ud83d": 1},
        {"\udead": 1, "b": 2},  # sorting the names meets it first: was a bare UnicodeEncodeError
    ],
)
def test_lone_surrogates_are_refused_with_a_typed_error(value: Any) -> None:
    assert_refused(value)


# --- member order (section 3.2.3: UTF-16 code units, recursively) -------------------------------


def test_members_sort_by_utf16_code_units_not_by_code_points() -> None:
    # U+1D11E and U+1F600 are D834 DD1E and D83D DE00 in UTF-16: before U+FF21 and U+E000, though
    # after them by code point (and in UTF-8 bytes, which is how orjson would sort them)
    value = {"\uff21": 1, "\U0001f600": 2, "\ue000": 3, "\U0001d11e": 4, "\u20ac": 5, "z": 6, "\u00e9": 7, "Z": 8}
    expected = '{"Z":8,"z":6,"\u00e9":7,"\u20ac":5,"\U0001d11e":4,"\U0001f600":2,"\ue000":3,"\uff21":1}'
    assert_canonical(value, expected.encode("utf-8"))
    assert not in_fast_domain(value) and fast_path(value) is None  # orjson declines, it would misorder


def test_members_sort_as_strings_not_numbers_and_a_prefix_first() -> None:
    value = {"10": 1, "9": 2, "1": 3, "a\x00": 4, "ab": 5, "a": 6, "": 7, "B": 8}
    assert_canonical(value, b'{"":7,"1":3,"10":1,"9":2,"B":8,"a":6,"a\\u0000":4,"ab":5}')
    assert in_fast_domain(value)


def test_nested_objects_sort_at_every_depth_and_arrays_keep_their_order() -> None:
    value = {"b": [{"z": 1, "y": [3, 1, 2], "x": {}}, [], [{"\u00f6": None, "o": True}]], "a": {"d": 0.5, "c": False}}
    expected = '{"a":{"c":false,"d":0.5},"b":[{"x":{},"y":[3,1,2],"z":1},[],[{"o":true,"\u00f6":null}]]}'
    assert_canonical(value, expected.encode("utf-8"))
    assert_canonical(({"b": 1, "a": (2.0, "x")},), b'[{"a":[2,"x"],"b":1}]')  # tuples are arrays


def test_duplicate_member_names_are_refused_when_a_certificate_is_read() -> None:
    """I-JSON (RFC 7493 section 2.3), which RFC 8785 builds on, forbids duplicate names; a Python dict
    cannot hold them, so the verifier's parser is where they must be refused, at any depth."""
    for text in ('{"a":1,"a":2}', '{"x":[{"b":1,"c":2,"b":3}]}', '{"\\u0061":1,"a":2}'):
        with pytest.raises(DuplicateMemberError):
            loads(text)


# --- what cannot be canonicalised ---------------------------------------------------------------


@pytest.mark.parametrize("value", [{1: "x"}, {None: 1}, [b"bytes"], {"s": {1, 2}}, [object()]])
def test_values_json_has_not_are_refused_with_a_typed_error(value: Any) -> None:
    assert_refused(value)


def test_nesting_too_deep_to_recurse_is_refused_with_a_typed_error() -> None:
    value: Any = 1
    for _ in range(5000):
        value = [value]
    with pytest.raises(rfc8785.CanonicalizationError):
        canonical_bytes(value)


def test_deep_nesting_orjson_declines_takes_the_reference_path() -> None:
    value: Any = "x"
    for depth in range(300):  # orjson stops at 255 levels
        value = {"k": value} if depth % 2 else [value]
    assert canonical_bytes(value) == rfc8785.dumps(value)
