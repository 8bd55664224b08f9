"""RFC 8785 (JCS) canonical JSON, fast: what certificate digests and ledger hashes are taken over.

``rfc8785`` (a maintained JCS implementation) is the canonicaliser of record. It is pure Python
(about 13k small objects/s here): signing, checking and hashing a sanitisation certificate went
through it three or four times per device on the bench line. For the value domain our documents
use (ASCII keys; str, bool, None, ints within +/-2**53, finite floats, nested lists, tuples and
dicts) orjson with sorted keys yields the same bytes for everything but floats: the same escapes,
raw UTF-8, no whitespace. Floats are written by ``rfc8785`` itself (ECMAScript number form: ``1e+21``,
``1e-7``, ``100``) and spliced in as orjson fragments, so no number formatting is ours. Anything
outside the domain (str subclasses, non-ASCII keys, huge ints, NaN) goes whole to ``rfc8785``,
which decides, refusals included; every refusal is a ``rfc8785.CanonicalizationError``.
``tests/kernel/test_canonical.py`` checks byte equality with the reference on generated values,
``tests/kernel/test_canonical_rfc8785_rules.py`` both paths against the rules of RFC 8785 itself.
"""

from __future__ import annotations

from typing import Any

import orjson
import rfc8785

_MAX_SAFE_INT = 2**53 - 1
_SORT = orjson.OPT_SORT_KEYS


class _Outside(Exception):
    """The value holds something orjson's output is not known to match the reference for."""


def in_fast_domain(value: Any) -> bool:
    """True when orjson's sorted output is the RFC 8785 output for ``value`` as it is (no floats)."""
    kind = type(value)
    if kind is str or value is None or kind is bool:
        return True
    if kind is int:
        return -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT
    if kind is list:
        return all(in_fast_domain(v) for v in value)
    if kind is dict:
        return all(type(k) is str and k.isascii() and in_fast_domain(v) for k, v in value.items())
    return False


def _with_reference_floats(value: Any) -> Any:
    """``value`` with every float replaced by the reference's bytes for it (an orjson fragment).

    :raises _Outside: something else outside the fast domain.
    :raises rfc8785.CanonicalizationError: a float JCS cannot represent (NaN, infinity), as the
        reference would for the whole value.
    """
    kind = type(value)
    if kind is str or value is None or kind is bool:
        return value
    if kind is int:
        if -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT:
            return value
        raise _Outside
    if kind is float:
        return orjson.Fragment(rfc8785.dumps(value))
    if kind is list or kind is tuple:
        return [_with_reference_floats(v) for v in value]
    if kind is dict:
        if not all(type(k) is str and k.isascii() for k in value):
            raise _Outside
        return {k: _with_reference_floats(v) for k, v in value.items()}
    raise _Outside


def canonical_bytes(value: Any) -> bytes:
    """The RFC 8785 bytes of ``value``.

    :raises rfc8785.CanonicalizationError: a value JCS cannot represent (NaN, infinity, an integer
        beyond +/-(2**53 - 1), a lone surrogate in a string or a member name, a type JSON has not,
        a non-string member name, nesting deeper than the interpreter can recurse).
    """
    try:
        if in_fast_domain(value):
            return orjson.dumps(value, option=_SORT)
        return orjson.dumps(_with_reference_floats(value), option=_SORT)
    except (_Outside, orjson.JSONEncodeError):
        pass  # e.g. a lone surrogate, a str subclass: let the reference implementation decide
    except RecursionError:
        raise rfc8785.CanonicalizationError("value is nested too deeply") from None
    return _reference_bytes(value)


def _reference_bytes(value: Any) -> bytes:
    """``rfc8785.dumps``, its refusals all typed ``CanonicalizationError`` (the ``ValueError`` it is)."""
    try:
        return rfc8785.dumps(value)
    except UnicodeEncodeError as exc:
        # a lone surrogate in a member name: rfc8785 meets it encoding the names to sort them
        # (RFC 8785 section 3.2.3), before its own string check (section 3.2.2.2) could refuse it
        raise rfc8785.CanonicalizationError("input contains non-UTF-8 codepoints") from exc
    except RecursionError:
        raise rfc8785.CanonicalizationError("value is nested too deeply") from None
