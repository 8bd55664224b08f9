"""Battery wear from the kernel's power-supply class (``/sys/class/power_supply/BAT*/uevent``)
or from ``upower -i`` (the same figures, as UPower prints them).

Wear is full capacity against design capacity: a battery that holds 52% of what it was built
to hold lasts half a shift. The kernel reports energy (µWh) or, on some firmware, charge (µAh);
both give the same ratio, so either is used, never a mix.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any


class BatteryParseError(ValueError):
    """The text is not a battery's uevent / upower report, or lacks its capacities."""


@dataclass(frozen=True)
class BatteryHealth:
    name: str
    full: float  # µWh or µAh (see unit), or Wh from upower
    design: float
    unit: str  # "uWh", "uAh" or "Wh"
    cycle_count: int | None
    source: str

    @property
    def capacity_percent(self) -> float:
        """Full capacity as a percentage of design capacity (100 new; lower is more worn)."""
        return round(100.0 * self.full / self.design, 1)

    def as_evidence(self) -> dict[str, Any]:
        return asdict(self) | {"capacity_percent": self.capacity_percent}


def parse_uevent(text: str) -> BatteryHealth:
    """One ``/sys/class/power_supply/<name>/uevent`` file.

    :raises BatteryParseError: not a battery, or no full and design capacity of one kind.
    """
    fields = dict(line.removeprefix("POWER_SUPPLY_").split("=", 1) for line in text.splitlines() if "=" in line)
    if fields.get("TYPE", "Battery") != "Battery":
        raise BatteryParseError(f"power supply {fields.get('NAME', '?')} is a {fields.get('TYPE')}, not a battery")
    for kind, unit in (("ENERGY", "uWh"), ("CHARGE", "uAh")):
        full, design = fields.get(f"{kind}_FULL"), fields.get(f"{kind}_FULL_DESIGN")
        if full and design and full.isdigit() and design.isdigit() and int(design) > 0:
            cycles = fields.get("CYCLE_COUNT", "")
            return BatteryHealth(
                name=fields.get("NAME", ""),
                full=float(full),
                design=float(design),
                unit=unit,
                cycle_count=int(cycles) if cycles.isdigit() else None,
                source="sysfs",
            )
    raise BatteryParseError(f"power supply {fields.get('NAME', '?')} reports no full and design capacity")


_UPOWER_LINE = re.compile(r"^\s*([a-z-]+):\s+(.*?)\s*$")


def parse_upower(text: str) -> BatteryHealth:
    """``upower -i /org/freedesktop/UPower/devices/battery_BAT0``.

    :raises BatteryParseError: no energy-full / energy-full-design in Wh.
    """
    fields: dict[str, str] = {}
    for line in text.splitlines():
        match = _UPOWER_LINE.match(line)
        if match:
            fields.setdefault(match.group(1), match.group(2))
    try:  # UPower prints numbers in the user's locale: "46,97 Wh" under de_DE
        full = float(fields["energy-full"].split()[0].replace(",", "."))
        design = float(fields["energy-full-design"].split()[0].replace(",", "."))
    except (KeyError, ValueError, IndexError) as exc:
        raise BatteryParseError("upower output has no energy-full and energy-full-design") from exc
    if design <= 0:
        raise BatteryParseError("upower reports a design capacity of 0")
    cycles = fields.get("charge-cycles", "")
    name = fields.get("native-path", "")
    return BatteryHealth(name, full, design, "Wh", int(cycles) if cycles.isdigit() else None, "upower")
