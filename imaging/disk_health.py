"""Disk health from the tools' own JSON: ``smartctl -j -a`` (ATA and NVMe) and nvme-cli's
``nvme smart-log -o json``.

What the routing rules need from a disk, whatever its transport: how worn it is (NVMe
"percentage used", or the ATA wear-levelling attribute turned into the same scale), how many media
errors it has had, how long it has been powered on, and whether the drive itself says it is
failing. A value the tool did not report stays ``None``: "unknown" is not "healthy", and the rules
decide what an unknown means.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from imaging.tool_json import tool_json_object

# ATA attributes read for errors: reallocated sectors, reported uncorrectable, pending, offline uncorrectable.
_ATA_ERROR_ATTRIBUTES = (5, 187, 197, 198)
# ATA attributes whose normalised value counts down from 100 as the flash wears (vendors differ).
_ATA_WEAR_ATTRIBUTES = (177, 231, 233, 202)


class HealthParseError(ValueError):
    """The output is not the JSON the tool prints, or lacks the fields that name the disk."""


@dataclass(frozen=True)
class DiskHealth:
    serial: str
    model: str
    transport: str  # "nvme" or "ata"
    wear_percent: int | None  # 0 new .. 100 rated endurance used (can exceed 100)
    media_errors: int | None
    power_on_hours: int | None
    failing: bool | None  # the drive's own verdict (SMART overall / NVMe critical warning)
    source: str  # which tool's output this came from

    def as_evidence(self) -> dict[str, Any]:
        return asdict(self)


def _load(text: str, tool: str) -> dict[str, Any]:
    return tool_json_object(text, tool, HealthParseError)


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def parse_nvme_smart_log(text: str, *, serial: str, model: str = "") -> DiskHealth:
    """``nvme smart-log DEV -o json`` (nvme-cli 2.x). The log page does not name the disk, so the
    caller passes the serial it read from ``id-ctrl``.

    :raises HealthParseError: not JSON, or no health fields in it.
    """
    data = _load(text, "nvme smart-log")
    if "critical_warning" not in data or "power_on_hours" not in data:
        raise HealthParseError("nvme smart-log output has no critical_warning / power_on_hours")
    used = _int(data.get("percent_used", data.get("percentage_used")))
    warning = _int(data.get("critical_warning"))
    return DiskHealth(
        serial=serial.strip(),
        model=model.strip(),
        transport="nvme",
        wear_percent=used,
        media_errors=_int(data.get("media_errors")),
        power_on_hours=_int(data.get("power_on_hours")),
        failing=None if warning is None else warning != 0,
        source="nvme smart-log",
    )


def parse_smartctl(text: str) -> DiskHealth:
    """``smartctl -j -a DEV`` (smartmontools 7.x), for an ATA or an NVMe disk.

    :raises HealthParseError: not JSON, smartctl could not open the device, or no serial in it.
    """
    data = _load(text, "smartctl")
    serial = str(data.get("serial_number") or "").strip()
    if not serial:
        messages = (data.get("smartctl") or {}).get("messages") or []
        said = "; ".join(str(m.get("string", "")) for m in messages if isinstance(m, dict))
        raise HealthParseError(f"smartctl read no disk: {said or 'no serial_number in its output'}")
    protocol = str((data.get("device") or {}).get("protocol") or "").lower()
    passed = (data.get("smart_status") or {}).get("passed")
    failing = None if not isinstance(passed, bool) else not passed
    hours = _int((data.get("power_on_time") or {}).get("hours"))
    nvme_log = data.get("nvme_smart_health_information_log")
    if protocol == "nvme" or isinstance(nvme_log, dict):
        log = nvme_log if isinstance(nvme_log, dict) else {}
        warning = _int(log.get("critical_warning"))
        return DiskHealth(
            serial=serial,
            model=str(data.get("model_name") or ""),
            transport="nvme",
            wear_percent=_int(log.get("percentage_used")),
            media_errors=_int(log.get("media_errors")),
            power_on_hours=_int(log.get("power_on_hours")) if hours is None else hours,
            failing=failing if warning is None else (bool(failing) or warning != 0),
            source="smartctl",
        )
    attributes = _ata_attributes(data)
    return DiskHealth(
        serial=serial,
        model=str(data.get("model_name") or ""),
        transport="ata",
        wear_percent=_ata_wear(attributes),
        media_errors=_ata_errors(attributes),
        power_on_hours=hours if hours is not None else _raw(attributes, 9),
        failing=failing,
        source="smartctl",
    )


def _ata_attributes(data: dict[str, Any]) -> dict[int, dict[str, Any]]:
    table = (data.get("ata_smart_attributes") or {}).get("table") or []
    return {int(row["id"]): row for row in table if isinstance(row, dict) and isinstance(row.get("id"), int)}


def _raw(attributes: dict[int, dict[str, Any]], attribute: int) -> int | None:
    row = attributes.get(attribute)
    return None if row is None else _int((row.get("raw") or {}).get("value"))


def _ata_errors(attributes: dict[int, dict[str, Any]]) -> int | None:
    values = [v for v in (_raw(attributes, a) for a in _ATA_ERROR_ATTRIBUTES) if v is not None]
    return sum(values) if values else None


def _ata_wear(attributes: dict[int, dict[str, Any]]) -> int | None:
    """Wear on the NVMe scale (percent of endurance used) from the first wear attribute present:
    its normalised value falls from 100 (new) towards 0."""
    for attribute in _ATA_WEAR_ATTRIBUTES:
        row = attributes.get(attribute)
        value = None if row is None else _int(row.get("value"))
        if value is not None and 0 <= value <= 100:
            return 100 - value
    return None
