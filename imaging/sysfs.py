"""Block device facts from sysfs and the udev database (read only)."""

from __future__ import annotations

import os
from pathlib import Path

SYS_BLOCK = Path("/sys/class/block")
SYS_DEV_BLOCK = Path("/sys/dev/block")
UDEV_DATA = Path("/run/udev/data")


def read_attr(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def name_for_rdev(rdev: int) -> str | None:
    """Kernel name (sda, sda1, nvme0n1, loop3) of the block device numbered ``rdev``."""
    link = SYS_DEV_BLOCK / f"{os.major(rdev)}:{os.minor(rdev)}"
    try:
        return Path(os.readlink(link)).name
    except OSError:
        return None


def name_for_majmin(majmin: str) -> str | None:
    try:
        return Path(os.readlink(SYS_DEV_BLOCK / majmin)).name
    except OSError:
        return None


def is_partition(name: str) -> bool:
    return (SYS_BLOCK / name / "partition").exists()


def whole_disk(name: str) -> str:
    """The disk a partition belongs to (the name itself for a whole disk)."""
    if is_partition(name):
        return (SYS_BLOCK / name).resolve().parent.name
    return name


def partitions(disk: str) -> list[str]:
    base = SYS_BLOCK / disk
    try:
        entries = sorted(p.name for p in base.iterdir())
    except OSError:
        return []
    return [e for e in entries if e.startswith(disk) and (base / e / "partition").exists()]


def _listdir(path: Path) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def holders(name: str) -> list[str]:
    return _listdir(SYS_BLOCK / name / "holders")


def slaves(name: str) -> list[str]:
    return _listdir(SYS_BLOCK / name / "slaves")


def underlying_disks(name: str) -> set[str]:
    """Whole disks beneath a device, following dm/md slaves down to real disks."""
    disks: set[str] = set()
    pending = [name]
    seen: set[str] = set()
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        below = slaves(current)
        if below:
            pending.extend(below)
        else:
            disks.add(whole_disk(current))
    return disks


def attr(name: str, relative: str) -> str | None:
    return read_attr(SYS_BLOCK / name / relative)


def int_attr(name: str, relative: str) -> int | None:
    value = attr(name, relative)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def device_path(name: str) -> str:
    """Resolved sysfs path of the device, e.g. .../usb1/1-1/.../block/sdb: tells the transport."""
    try:
        return str((SYS_BLOCK / name).resolve())
    except OSError:
        return ""


def udev_properties(rdev: int) -> dict[str, str]:
    """E: lines of the udev database record of the device (empty when udev has none)."""
    props: dict[str, str] = {}
    try:
        text = (UDEV_DATA / f"b{os.major(rdev)}:{os.minor(rdev)}").read_text()
    except OSError:
        return props
    for line in text.splitlines():
        if line.startswith("E:") and "=" in line:
            key, _, value = line[2:].partition("=")
            props[key] = value
    return props


def loop_backing_file(name: str) -> str | None:
    return attr(name, "loop/backing_file")


def loop_autoclear(name: str) -> bool | None:
    value = attr(name, "loop/autoclear")
    return None if value is None else value == "1"


def loop_devices() -> list[str]:
    return [n for n in _listdir(SYS_BLOCK) if n.startswith("loop") and (SYS_BLOCK / n / "loop").exists()]
