"""Route a returned device by its condition: reissue, redistribution or WEEE disposal ("due to age
or condition").

The evidence is what the service environment read from the device itself (disk health from
``smartctl -j`` / ``nvme smart-log``, battery wear from the power-supply class or UPower, the BIOS
date) plus the purchase date on record; the thresholds are the site's (``[routing]`` in a TOML
file). Each measure places the device on the worst route it calls for, with a reason a person
reads on the board and the device page; a measure the device did not report sends it nowhere on
its own, and the reasons say it was not reported.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date
from enum import IntEnum
from pathlib import Path
from typing import Any

from factory.kernel.errors import InvalidInput
from hardware_drivers.battery import BatteryHealth
from imaging.disk_health import DiskHealth


class Route(IntEnum):
    """Ordered: a device goes to the worst route any measure calls for."""

    REISSUE = 0
    REDISTRIBUTION = 1
    DISPOSAL = 2

    @property
    def role(self) -> str | None:
        """The intended role that sends the device out of the fleet (pipeline_rules.LEAVING_ROLES)."""
        return {Route.REDISTRIBUTION: "redistribution", Route.DISPOSAL: "disposal"}.get(self)

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Thresholds:
    """Where a measure stops a device being reissued, and where it sends it to disposal."""

    battery_reissue_min_percent: float = 60.0
    battery_redistribution_min_percent: float = 40.0
    age_reissue_max_years: float = 5.0
    age_redistribution_max_years: float = 8.0
    wear_reissue_max_percent: int = 80
    wear_redistribution_max_percent: int = 100
    media_errors_reissue_max: int = 0
    media_errors_redistribution_max: int = 100

    @classmethod
    def from_toml(cls, path: Path) -> Thresholds:
        """The ``[routing]`` table of a site file; unset keys keep the defaults above.

        :raises InvalidInput: unreadable file, unknown key or a non-number.
        """
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8")).get("routing", {})
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise InvalidInput(f"routing config {path}: {exc}") from exc
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInput(f"routing config {path}: unknown keys {', '.join(unknown)}")
        bad = [k for k, v in data.items() if isinstance(v, bool) or not isinstance(v, int | float) or v < 0]
        if bad:
            raise InvalidInput(f"routing config {path}: {', '.join(bad)} must be non-negative numbers")
        return cls(**data)


@dataclass(frozen=True)
class Condition:
    disks: Sequence[DiskHealth] = ()
    battery: BatteryHealth | None = None
    bios_date: date | None = None
    purchased_on: date | None = None

    def age_years(self, today: date) -> tuple[float, str] | None:
        """Age from the purchase date on record, else from the BIOS date; with which one."""
        born, source = (self.purchased_on, "purchased") if self.purchased_on else (self.bios_date, "BIOS date")
        return None if born is None else (round((today - born).days / 365.25, 1), f"{source} {born.isoformat()}")

    def as_evidence(self) -> dict[str, Any]:
        return {
            "disks": [d.as_evidence() for d in self.disks],
            "battery": self.battery.as_evidence() if self.battery else None,
            "bios_date": self.bios_date.isoformat() if self.bios_date else None,
            "purchased_on": self.purchased_on.isoformat() if self.purchased_on else None,
        }


@dataclass(frozen=True)
class Decision:
    route: Route
    reasons: tuple[str, ...]  # why, worst first

    def why(self) -> str:
        return f"{self.route.label}: {'; '.join(self.reasons)}"


def _grade(value: float, reissue_limit: float, redistribution_limit: float, *, higher_is_worse: bool) -> Route:
    if higher_is_worse:
        if value > redistribution_limit:
            return Route.DISPOSAL
        return Route.REDISTRIBUTION if value > reissue_limit else Route.REISSUE
    if value < redistribution_limit:
        return Route.DISPOSAL
    return Route.REDISTRIBUTION if value < reissue_limit else Route.REISSUE


def _battery(condition: Condition, t: Thresholds) -> tuple[Route, str]:
    if condition.battery is None:
        return Route.REISSUE, "battery not reported"
    pct = condition.battery.capacity_percent
    route = _grade(pct, t.battery_reissue_min_percent, t.battery_redistribution_min_percent, higher_is_worse=False)
    limit = {Route.REISSUE: "", Route.REDISTRIBUTION: f" (under {t.battery_reissue_min_percent:g}%)",
             Route.DISPOSAL: f" (under {t.battery_redistribution_min_percent:g}%)"}[route]  # fmt: skip
    return route, f"battery holds {pct:g}% of its design capacity{limit}"


def _age(condition: Condition, t: Thresholds, today: date) -> tuple[Route, str]:
    age = condition.age_years(today)
    if age is None:
        return Route.REISSUE, "age not known (no purchase or BIOS date)"
    years, source = age
    route = _grade(years, t.age_reissue_max_years, t.age_redistribution_max_years, higher_is_worse=True)
    limit = {Route.REISSUE: "", Route.REDISTRIBUTION: f" (over {t.age_reissue_max_years:g})",
             Route.DISPOSAL: f" (over {t.age_redistribution_max_years:g})"}[route]  # fmt: skip
    return route, f"{years:g} years old{limit}, from {source}"


def _disk(disk: DiskHealth, t: Thresholds) -> list[tuple[Route, str]]:
    name = f"disk {disk.serial}"
    if disk.failing:
        return [(Route.DISPOSAL, f"{name} reports itself failing ({disk.source})")]
    out: list[tuple[Route, str]] = []
    if disk.wear_percent is not None:
        r = _grade(
            disk.wear_percent, t.wear_reissue_max_percent, t.wear_redistribution_max_percent, higher_is_worse=True
        )
        out.append((r, f"{name} {disk.wear_percent}% worn"))
    if disk.media_errors is not None:
        r = _grade(
            disk.media_errors, t.media_errors_reissue_max, t.media_errors_redistribution_max, higher_is_worse=True
        )
        out.append((r, f"{name} {disk.media_errors} media errors"))
    if disk.power_on_hours is not None:
        out.append((Route.REISSUE, f"{name} {disk.power_on_hours} power-on hours"))
    return out or [(Route.REISSUE, f"{name} reported no health figures")]


def decide(condition: Condition, thresholds: Thresholds, today: date) -> Decision:
    """The route and its reasons: those that set the route first, then the rest."""
    graded = [_battery(condition, thresholds), _age(condition, thresholds, today)]
    for disk in condition.disks:
        graded.extend(_disk(disk, thresholds))
    if not condition.disks:
        graded.append((Route.REISSUE, "no disk health reported"))
    route = max(r for r, _ in graded)
    deciding = [why for r, why in graded if r == route]
    others = [why for r, why in graded if r != route]
    return Decision(route, tuple(deciding if route is not Route.REISSUE else deciding + others))
