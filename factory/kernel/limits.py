"""Length and range limits of user input, in one place: the API's schemas and the CLI both use these.

A value past a limit is refused at the edge with a reason (a 422 from the API, a one-line error
from the CLI) instead of reaching the database, where it would be an overflow or a 500.
"""

from __future__ import annotations

# Text, in characters.
SERIAL = 128  # a device's or a medium's serial number
MAKE = 128
MODEL = 128  # a device's or a medium's model
ASSET_TAG = 64
PARTY = 200  # a custodian, a location, a person's or a team's name
NAME = 64  # a short name: a wave, a user, a method
REFERENCE = 128  # a consignment, organisation or recycler reference, an anchor's id
REASON = 500  # a reason, a fault, an address, a description
CERTIFICATE_ID = 64
SEARCH_TERM = 128  # a search field or a serial prefix
HOST = 253  # a host name or address (DNS's longest name)
MEDIA_SPEC = 320  # TYPE:SERIAL:CAPACITY:MODEL as typed on the CLI (its serial and model have their own limits)
CURSOR = 400  # an opaque keyset cursor
DATE_TEXT = 40  # an ISO date or date-time as typed
LOCK_SUBJECT = 160  # what a sign-in lockout counts: 'account:NAME' or 'address:IP'

# Counts and numbers.
MEDIA_PER_DEVICE = 16
CAPACITY_BYTES = 2**53 - 1  # certificates carry byte counts as exact JSON numbers (docs/certificate-format.md)
ROW_ID = 2**62  # the largest id (a job's, an allocation's) any caller may name: fits a 64-bit column
PAGE = 500  # the most rows one page of a listing returns
REPORT_ROWS = 10_000  # the most rows of an exception report
BUNDLE_ITEMS = 200  # the most serials, or certificate ids, one evidence bundle names
PORT_MIN, PORT_MAX = 1, 65535
DAYS = 36500  # a look-back in days (a century)
BENCHES = 10_000  # the highest bench number
BENCH_JOBS = 64  # concurrent jobs on one bench (the site's default cap)
SIM_PAUSE = 3600.0  # the longest pause, in seconds, a simulation may be asked for


# A device's serial is a path segment of the API and the pages (/api/devices/{serial}): a slash
# there makes a different URL (the device becomes unreachable), so serials never hold one.
SERIAL_FORBIDDEN = "/\\"


def serial_problem(what: str, value: str) -> str | None:
    """Why ``value`` is not acceptable as a device serial: the text rules, and no slash or backslash."""
    if problem := text_problem(what, value, SERIAL, required=True):
        return problem
    bad = sorted({c for c in value if c in SERIAL_FORBIDDEN})
    if bad:
        return f"{what} '{value[:40]}' must not contain {' or '.join(repr(c) for c in bad)}"
    return None


def text_problem(what: str, value: str, limit: int, *, required: bool = False) -> str | None:
    """Why ``value`` is not acceptable as ``what`` (too long, empty when required, control characters)."""
    if required and not value.strip():
        return f"{what} must not be empty"
    if len(value) > limit:
        return f"{what} is {len(value)} characters long; at most {limit} are allowed"
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return f"{what} must not contain control characters"
    return None
