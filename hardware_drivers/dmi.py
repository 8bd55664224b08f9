"""What the laptop's firmware says about it in DMI/SMBIOS: its system serial (the identity it is
matched by) and its BIOS release date (its age).

Both are read from ``/sys/class/dmi/id/*`` or from ``dmidecode -s <keyword>``. dmidecode may print
comment lines (``# SMBIOS entry point at 0x...``, ``# No SMBIOS nor DMI entry point found``) and
diagnostics about a broken table (``Invalid entry length (16). Fixed up to 11.``) around the value;
firmware pads strings with spaces or NULs. Only the value line is read.

Many boards leave the vendor's placeholder in the serial field ("To Be Filled By O.E.M.", "Default
string", "123456789"): every such laptop reports the same text, so it names no one laptop and is
read as no serial at all (:func:`system_serial` returns ``None``).
"""

from __future__ import annotations

from datetime import date

# Values firmware vendors leave in DMI when nobody set a serial (compared case- and space-insensitively,
# a trailing dot ignored). tests/fixtures/udev/VARIANTS.md lists where they were seen.
PLACEHOLDER_SERIALS = frozenset(
    {
        "",
        "0",
        "none",
        "null",
        "n/a",
        "na",
        "unknown",
        "invalid",
        "default",
        "default string",
        "not specified",
        "not applicable",
        "not available",
        "not settable",
        "oem",
        "o.e.m",
        "to be filled by o.e.m",
        "system serial number",
        "chassis serial number",
        "base board serial number",
        "serial number",
        "0123456789",
        "123456789",
        "1234567890",
    }
)
# dmidecode's own lines, never a value: comments, and what it says of a broken or unreadable table.
_DMIDECODE_NOISE = (
    "invalid entry length",
    "dmi table is broken",
    "wrong dmi structures",
    "no smbios nor dmi entry point",
    "permission denied",
    "can't read memory",
    "getting smbios data from",
    "table at 0x",
)


class DmiParseError(ValueError):
    """Not an MM/DD/YYYY date."""


def dmi_value(text: str) -> str:
    """The value in a sysfs DMI file or a ``dmidecode -s`` output: the first line that is not a
    dmidecode comment or diagnostic, NULs and surrounding spaces removed ("" if there is none)."""
    for line in text.replace("\x00", "").splitlines():
        value = line.strip()
        if value and not value.startswith("#") and not any(n in value.lower() for n in _DMIDECODE_NOISE):
            return value
    return ""


def placeholder_serial(value: str) -> bool:
    """A serial that names no one laptop: a vendor placeholder, or one character repeated
    (``00000000``, ``FFFFFFFF``, ``XXXXXXXXXX``)."""
    text = " ".join(value.replace("\x00", "").split()).lower().rstrip(".")
    return text in PLACEHOLDER_SERIALS or len(set(text)) <= 1


def system_serial(text: str) -> str | None:
    """The system serial in ``/sys/class/dmi/id/product_serial`` or ``dmidecode -s
    system-serial-number`` output; ``None`` when it is missing, unreadable or a placeholder."""
    value = dmi_value(text)
    return None if placeholder_serial(value) else value


def parse_bios_date(text: str) -> date:
    """:raises DmiParseError: not MM/DD/YYYY (two-digit years are read as 19YY/20YY like dmidecode)."""
    value = dmi_value(text)
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
