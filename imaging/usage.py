"""Is a target mounted, in use, or part of the running system? Read from /proc and sysfs.

The system-disk check fails closed: when the disks under the running system's mount points cannot
all be named (``/`` is not a mount point in a chroot or rescue shell, an overlay whose layers are
out of sight, a network root), every block device is refused except one that is provably something
else: a loop device over a file visible here that the kernel lets us claim exclusively, which no
mounted filesystem in any namespace can be on.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from imaging import sysfs

MOUNTINFO = Path("/proc/self/mountinfo")
SWAPS = Path("/proc/swaps")
SYSTEM_MOUNTPOINTS = ("/", "/boot", "/boot/efi", "/usr")
RAM_FILESYSTEMS = frozenset({"tmpfs", "ramfs", "rootfs"})  # no disk beneath them
OVERLAY_DEPTH = 4  # overlays stacked on overlays deeper than this are not followed (fail closed)


@dataclass(frozen=True)
class Mount:
    majmin: str
    mountpoint: str
    source: str
    fstype: str = ""
    options: str = ""  # the superblock options (an overlay's layers are named here)


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal.
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def read_mounts(path: Path | None = None) -> list[Mount]:
    try:
        return parse_mountinfo((path or MOUNTINFO).read_text().splitlines())
    except OSError:
        return []


def parse_mountinfo(lines: Iterable[str]) -> list[Mount]:
    """Lines of a /proc/<pid>/mountinfo (this machine's, or a remote's as its probe printed them)."""
    mounts: list[Mount] = []
    for line in lines:
        fields = line.split()
        if len(fields) < 10 or "-" not in fields:
            continue
        sep = fields.index("-")
        if len(fields) < sep + 4:
            continue
        source, options = _unescape(fields[sep + 2]), fields[sep + 3]
        mounts.append(Mount(fields[2], _unescape(fields[4]), source, fields[sep + 1], options))
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


@dataclass(frozen=True)
class SystemDisks:
    """The whole disks holding the running system, and why some could not be named (then fail closed)."""

    disks: dict[str, str]  # disk -> the mount point that makes it a system disk
    unknown: str | None = None


def system_disks(mounts: list[Mount]) -> SystemDisks:
    """Whole disks under the system mount points; ``unknown`` says when they cannot all be named."""
    found: dict[str, str] = {}
    unknown: list[str] = []
    if not any(m.mountpoint == "/" for m in mounts):
        unknown.append("/ is not a mount point here (a chroot or rescue environment?)")
        # The filesystem this process sees as / is still on some disk: name it when sysfs can.
        name = sysfs.name_for_rdev(os.stat("/").st_dev)
        for disk in sysfs.underlying_disks(name) if name else ():
            found.setdefault(disk, "/")
    for mount in mounts:
        if mount.mountpoint not in SYSTEM_MOUNTPOINTS:
            continue
        disks = _disks_under(mount, mounts, OVERLAY_DEPTH)
        if disks is None:
            unknown.append(f"the disk under {mount.mountpoint} ({mount.fstype} from {mount.source}) is not known")
        for disk in disks or ():
            found.setdefault(disk, mount.mountpoint)
    return SystemDisks(found, "; ".join(unknown) or None)


def _disks_under(mount: Mount, mounts: list[Mount], depth: int) -> set[str] | None:
    """Whole disks a mounted filesystem lives on; None when that cannot be told."""
    name = sysfs.name_for_majmin(mount.majmin)
    if name is None and mount.source.startswith("/dev/"):
        name = _block_name(mount.source)  # btrfs and others report an anonymous device number
    if name is not None:
        return sysfs.underlying_disks(name)
    if mount.fstype in RAM_FILESYSTEMS:
        return set()
    if mount.fstype != "overlay" or depth == 0:
        return None
    disks: set[str] = set()
    for layer in _overlay_layers(mount.options):
        below = _containing_mount(layer, mounts)
        found = None if below is None or below is mount else _disks_under(below, mounts, depth - 1)
        if found is None:
            return None
        disks |= found
    return disks


def _block_name(path: str) -> str | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return sysfs.name_for_rdev(st.st_rdev) if stat.S_ISBLK(st.st_mode) else None


def _overlay_layers(options: str) -> list[str]:
    layers: list[str] = []
    for option in options.split(","):
        key, _, value = option.partition("=")
        if key.rstrip("+") in ("lowerdir", "upperdir", "datadir") and value:
            layers.extend(_unescape(part) for part in value.split(":") if part)
    return layers


def _containing_mount(path: str, mounts: list[Mount]) -> Mount | None:
    """The mount a path lies on: the longest mount point above it (the last mounted on a tie)."""
    best: Mount | None = None
    for mount in mounts:
        point = mount.mountpoint
        if path == point or path.startswith(point.rstrip("/") + "/"):
            if best is None or len(point) >= len(best.mountpoint):
                best = mount
    return best


def provably_not_system(name: str) -> bool:
    """A loop device over a regular file visible here, claimable exclusively (mounted nowhere)."""
    disk = sysfs.whole_disk(name)
    backing = sysfs.loop_backing_file(disk) if disk.startswith("loop") else None
    if not backing or backing.endswith(" (deleted)") or not os.path.isfile(backing):
        return False
    try:
        # O_EXCL on a block device fails with EBUSY when a filesystem in any namespace holds it.
        fd = os.open(f"/dev/{disk}", os.O_RDONLY | os.O_EXCL)
    except OSError:
        return False
    os.close(fd)
    return True


def block_usage(name: str) -> Usage:
    """Usage of block device ``name`` (a disk or a partition) and everything on it."""
    mounts = read_mounts()
    names = _names_of(name)
    majmins = {f"{os.major(rdev)}:{os.minor(rdev)}" for n in names if (rdev := _rdev_of(n)) is not None}
    mountpoints = tuple(sorted(m.mountpoint for m in mounts if m.majmin in majmins))
    held = tuple(sorted({h for n in names for h in sysfs.holders(n)}))
    swaps = tuple(s for s in read_swaps() if Path(s).name in names)
    return Usage(mountpoints, held, swaps, (), system_reason(name, system_disks(mounts)))


def system_reason(name: str, system: SystemDisks) -> str | None:
    """Why ``name`` must be treated as the running system's disk, or None."""
    disk = sysfs.whole_disk(name)
    if point := system.disks.get(disk) or system.disks.get(name):
        return f"{disk} holds the running system ({point})"
    if system.unknown and not provably_not_system(name):
        return (
            f"the running system's disk cannot be determined ({system.unknown}), so every block device "
            "that is not provably another (a loop device over a file visible here) is refused"
        )
    return None


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
