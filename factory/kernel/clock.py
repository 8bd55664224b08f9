"""The one clock of factory/ and api/: UTC moments, and timestamps in one fixed text form so they
hash identically on every database."""

from __future__ import annotations

from datetime import UTC, datetime

_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def now() -> datetime:
    """The current moment, timezone-aware, in UTC."""
    return datetime.now(UTC)


def utc_now() -> str:
    """The current moment in the stored text form (``2026-01-31T08:00:00.000000Z``)."""
    return format_utc(now())


def format_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_FORMAT)


def parse_utc(stamp: str) -> datetime:
    """A stored timestamp back as an aware UTC moment (the inverse of ``format_utc``)."""
    return datetime.strptime(stamp, _FORMAT).replace(tzinfo=UTC)
