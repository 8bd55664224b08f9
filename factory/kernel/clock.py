"""The one clock of factory/ and api/: UTC moments, and timestamps in one fixed text form so they
hash identically on every database."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_SITE_ZONE = ZoneInfo("Europe/London")  # the force's sites are in the UK: pages show its local time


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


def uk_moment(day: date, at: time) -> datetime:
    """A UK wall-clock time on a day (what a person on site types) as an aware moment."""
    return datetime.combine(day, at, _SITE_ZONE)


def uk_time(stamp: str | None, empty: str = "—") -> str:
    """A stored timestamp as people on site read it: UK local time, 24-hour, day first
    ("06/12/2026 08:15"); ``empty`` for none. Text that is not a stored timestamp comes back as is."""
    if not stamp:
        return empty
    try:
        moment = parse_utc(stamp)
    except ValueError:
        return stamp
    return moment.astimezone(_SITE_ZONE).strftime("%d/%m/%Y %H:%M")
