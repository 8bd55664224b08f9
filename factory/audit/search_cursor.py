"""The certificate search's page cursor: the last row's sort key, opaque to the caller.

A cursor is the key (moment, outcome rank, tie-breaker) of the last row of a page, as URL-safe
base64 of its JSON; the next page starts after it. A cursor the search did not make is refused
with the reason, never trusted.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection

import orjson

from factory.audit.errors import AuditRequestInvalid

CursorKey = tuple[str, int, str | int]


def encode_cursor(key: CursorKey) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(key))).decode("ascii").rstrip("=")


def decode_cursor(text: str, ranks: Collection[int]) -> CursorKey:
    """The key in ``text``, whose rank must be one of ``ranks``.

    :raises AuditRequestInvalid: not a cursor this search made.
    """
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        at, rank, key = orjson.loads(raw)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise AuditRequestInvalid("cursor is not valid (it must come from a previous page)") from exc
    if not isinstance(at, str) or rank not in ranks or not isinstance(key, str | int):
        raise AuditRequestInvalid("cursor is not valid (it must come from a previous page)")
    return at, rank, key
