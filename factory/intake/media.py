"""Parse ``--media`` specs: ``TYPE:SERIAL[:CAPACITY[:MODEL]]``, e.g. ``nvme:S4EW0001:512G:PM9A1``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from factory.kernel import limits
from factory.kernel.errors import InvalidInput
from factory.kernel.models.device import MediaType, StorageMedium

_UNITS = {"": 1, "B": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40, "KB": 10**3, "MB": 10**6,
          "GB": 10**9, "TB": 10**12}  # fmt: skip
_CAPACITY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")


@dataclass(frozen=True)
class MediaSpec:
    media_type: str
    serial: str
    capacity_bytes: int = 0
    model: str = ""


def parse_capacity(text: str) -> int:
    match = _CAPACITY.match(text)
    if not match or match.group(2).upper() not in _UNITS:
        raise InvalidInput(f"capacity '{text[:40]}' is not a size like 512G, 1T or 256000000000")
    value = float(match.group(1)) * _UNITS[match.group(2).upper()]
    if not value <= limits.CAPACITY_BYTES:  # also refuses inf, which int() cannot convert
        raise InvalidInput(f"capacity '{text[:40]}' is more than {limits.CAPACITY_BYTES} bytes")
    return int(value)


def parse_media_spec(spec: str) -> MediaSpec:
    parts = spec.split(":", 3)
    if len(parts) < 2 or not parts[1].strip():
        raise InvalidInput(f"media '{spec[:80]}' must look like TYPE:SERIAL[:CAPACITY[:MODEL]]")
    media_type = parts[0].strip().lower()
    valid = [m.value for m in MediaType]
    if media_type not in valid:
        raise InvalidInput(f"media type '{media_type[:40]}' is not one of: {', '.join(valid)}")
    capacity = parse_capacity(parts[2]) if len(parts) > 2 and parts[2].strip() else 0
    model = parts[3].strip() if len(parts) > 3 else ""
    for what, value, limit in (("media serial", parts[1].strip(), limits.SERIAL), ("media model", model, limits.MODEL)):
        if problem := limits.text_problem(what, value, limit):
            raise InvalidInput(problem)
    return MediaSpec(media_type=media_type, serial=parts[1].strip(), capacity_bytes=capacity, model=model)


def medium_row(device_id: int, spec: MediaSpec) -> StorageMedium:
    """The storage-medium row recording ``spec`` inside device ``device_id``."""
    return StorageMedium(
        device_id=device_id,
        serial=spec.serial.strip(),
        model=spec.model,
        media_type=spec.media_type,
        capacity_bytes=spec.capacity_bytes,
    )
