"""RFC 8785 (JCS) canonical JSON.

``rfc8785`` (a maintained JCS implementation) is the canonicaliser of record. It is pure Python
(about 13k small objects/s here), too slow to re-hash millions of ledger rows, so for the narrow
value domain the ledger uses (ASCII keys; str, bool, None, ints within +/-2**53, nested lists and
dicts) we let orjson serialise with sorted keys, which yields the same bytes: the same escapes,
raw UTF-8, no whitespace. ``tests/core/test_canonical.py`` checks that byte equality on generated
values; anything outside the domain (floats, huge ints, non-ASCII keys) goes to rfc8785.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import rfc8785

_MAX_SAFE_INT = 2**53 - 1


def in_fast_domain(value: Any) -> bool:
    """True when orjson's sorted output is provably the RFC 8785 output for ``value``."""
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


def canonical_bytes(value: Any) -> bytes:
    if in_fast_domain(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass  # e.g. a lone surrogate: let the reference implementation decide
    return rfc8785.dumps(value)


def sha256_hex(value: Any) -> str:
    return hashlib.sha256(canonical_bytes(value)).hexdigest()
