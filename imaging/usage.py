"""Is a target mounted, in use, or part of the running system? Read from /proc and sysfs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from imaging import sysfs

MOUNTINFO = Path("/proc/self/mountinfo")
SWAPS = Path("/proc/swaps")
SYSTEM_MOUNTPOINTS = ("/", "/boot", "/boot/efi", "/usr")


@dataclass(frozen=True)
class Mount:
    majmin: str
    mountpoint: str
    source: str


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal.
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def read_mounts(path: Path = MOUNTINFO) -> list[Mount]:
    mounts: list[Mount] = []
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return mounts
    for line in lines:
        fields = line.split()
        if len(fields) < 10 or "-" not in fields:
            continue
        sep = fields.index("-")
        mounts.append(Mount(fields[2], _unescape(fields[4]), _unescape(fields[sep + 2])))
    return mounts


def read_swaps(path: Path = SWAPS) -> list[str]:
    try:
        lines = path.read_text().splitlines()[1:]
    except OSError:
        return []
    return [_unescape(line.split()[0]) for line in lines if line.strip()]


def _names_of(name: str) -> set[str]:
    """The device and, for a whole disk, its partitions."""
    return {name, *sysfs.partitions(name)}


@dataclass(frozen=True)
class Usage:
    mountpoints: tuple[str, ...]
    holders: tuple[str, ...]
    swaps: tuple[str, ...]
    loop_users: tuple[str, ...]
    system_reason: str | None

    @property
    def in_use_reason(self) -> str | None:
        if self.holders:
            return f"held by {', '.join(self.holders)}"
        if self.swaps:
            return f"used as swap ({', '.join(self.swaps)})"
        if self.loop_users:
            return f"backing file of {', '.join(self.loop_users)}"
        return None


def system_disks(mounts: list[Mount]) -> dict[str, str]:
    """Whole disks under the system mount points, mapped to the mount point that makes them so."""
    found: dict[str, str] = {}
    for mount in mounts:
        if mount.mountpoint not in SYSTEM_MOUNTPOINTS:
            continue
        name = sysfs.name_for_majmin(mount.majmin)
        if name is None:
            continue
        for disk in sysfs.underlying_disks(name):
            found.setdefault(disk, mount.mountpoint)
    return found


def block_usage(name: str) -> Usage:
    """Usage of block device ``name`` (a disk or a partition) and everything on it."""
    mounts = read_mounts()
    names = _names_of(name)
    majmins = {f"{os.major(rdev)}:{os.minor(rdev)}" for n in names if (rdev := _rdev_of(n)) is not None}
    mountpoints = tuple(sorted(m.mountpoint for m in mounts if m.majmin in majmins))
    held = tuple(sorted({h for n in names for h in sysfs.holders(n)}))
    swaps = tuple(s for s in read_swaps() if Path(s).name in names)
    disk = sysfs.whole_disk(name)
    system = system_disks(mounts)
    system_reason = None
    if disk in system or name in system:
        system_reason = f"{disk} holds the running system ({system.get(disk) or system.get(name)})"
    return Usage(mountpoints, held, swaps, (), system_reason)


def file_usage(path: str) -> Usage:
    """A regular file is in use when it backs a loop device or is active swap."""
    real = os.path.realpath(path)
    users = tuple(
        f"/dev/{loop}"
        for loop in sysfs.loop_devices()
        if (backing := sysfs.loop_backing_file(loop)) is not None
        and os.path.realpath(backing.removesuffix(" (deleted)")) == real
    )
    swaps = tuple(s for s in read_swaps() if os.path.realpath(s) == real)
    return Usage((), (), swaps, users, None)


def _rdev_of(name: str) -> int | None:
    value = sysfs.attr(name, "dev")
    if not value or ":" not in value:
        return None
    major, minor = value.split(":")
    return os.makedev(int(major), int(minor))
