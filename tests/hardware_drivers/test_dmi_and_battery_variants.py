"""DMI serials and battery reports as real machines print them (tests/fixtures/udev/VARIANTS.md):
each fixture is our own text in the variant's format, with made-up identifiers."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from hardware_drivers.battery import parse_uevent, parse_upower
from hardware_drivers.dmi import parse_bios_date, placeholder_serial, system_serial
from hardware_drivers.ssh import _pick_serial

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "condition"
PLACEHOLDERS = [
    "To Be Filled By O.E.M.",
    "To be filled by O.E.M.",
    "Default string",
    "System Serial Number",
    "Chassis Serial Number",
    "Not Specified",
    "None",
    "0123456789",
    "123456789",
    "00000000",
    "FFFFFFFFFFFFFFFF",
    "  ",
]


@pytest.mark.parametrize("placeholder", PLACEHOLDERS)
def test_a_placeholder_dmi_serial_is_no_serial(placeholder: str) -> None:
    assert placeholder_serial(placeholder) and system_serial(f"{placeholder}   \n") is None
    # The bench preflight falls back to the serial the imaging stage wrote, else reports none.
    assert _pick_serial(f"{placeholder}\n", "WB-0001\n") == ("WB-0001", "fallback")
    assert _pick_serial(f"{placeholder}\n", "") == (None, "none")


def test_real_serials_are_not_taken_for_placeholders() -> None:
    for serial in ["PF3ABCDE", "5CG1234XYZ", "DTVXYZ00130508B6392", "0123456789X", "C02ZZ0XXMD6M"]:
        assert system_serial(serial + "\n") == serial
        assert _pick_serial(serial + "\n", "WB-0001") == (serial, "dmi")


def test_dmidecode_comments_and_broken_table_lines_are_not_the_serial() -> None:
    assert system_serial((FIXTURES / "dmidecode-system-serial-noisy.txt").read_text()) == "DFQ7K2M91"
    assert system_serial("Invalid entry length (0). DMI table is broken! Stop.\n") is None
    assert system_serial("# No SMBIOS nor DMI entry point found, sorry.\n") is None
    assert parse_bios_date((FIXTURES / "dmidecode-bios-date-noisy.txt").read_text()) == date(2019, 12, 3)


def test_a_serial_padded_with_spaces_and_nuls_reads_as_the_serial() -> None:
    padded = (FIXTURES / "dmi-product-serial-padded.bin").read_bytes().decode()
    assert "\x00" in padded and system_serial(padded) == "DFQ7K2M91"


def test_upower_in_a_comma_decimal_locale() -> None:
    health = parse_upower((FIXTURES / "upower-battery-comma-decimal.txt").read_text())
    assert (health.full, health.design, health.unit, health.cycle_count) == (41.58, 57.02, "Wh", None)
    assert health.capacity_percent == 72.9


def test_a_battery_reporting_charge_in_uah_with_no_cycle_count() -> None:
    health = parse_uevent((FIXTURES / "battery-bat0-charge-uevent.txt").read_text())
    assert (health.unit, health.full, health.design) == ("uAh", 3_368_000, 4_210_000)
    assert health.capacity_percent == 80.0
    assert health.cycle_count == 0  # as the firmware reports it; the route reads the capacity only
