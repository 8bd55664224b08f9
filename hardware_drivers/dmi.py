"""The device's age as its firmware states it: the BIOS release date from DMI
(``/sys/class/dmi/id/bios_date``, or ``dmidecode -s bios-release-date``), printed MM/DD/YYYY."""

from __future__ import annotations

from datetime import date


class DmiParseError(ValueError):
    """Not an MM/DD/YYYY date."""


def parse_bios_date(text: str) -> date:
    """:raises DmiParseError: not MM/DD/YYYY (two-digit years are read as 19YY/20YY like dmidecode)."""
    value = text.strip()
    parts = value.split("/")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise DmiParseError(f"BIOS date {value[:40]!r} is not MM/DD/YYYY")
    month, day, year = (int(p) for p in parts)
    if year < 100:
        year += 1900 if year >= 80 else 2000
    try:
        return date(year, month, day)
    except ValueError as exc:
        raise DmiParseError(f"BIOS date {value!r}: {exc}") from exc
