"""The system-disk check fails closed: when the running system's disk cannot be named, refuse them all.

A chroot or rescue shell is simulated with a mountinfo file the module reads instead of
/proc/self/mountinfo (its ``MOUNTINFO`` seam); the disks, sysfs and device nodes are this machine's.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from harness.disks import MIB, loop_device, make_image
from harness.requirements import require, require_root, require_tool

from imaging import remote_probe, sysfs, usage
from imaging.errors import SystemDiskRefused
from imaging.probe import probe_target

REAL = usage.read_mounts()


def _line(mount_id: int, majmin: str, point: str, fstype: str, source: str, options: str = "rw") -> str:
    return f"{mount_id} 1 {majmin} / {point} rw,relatime - {fstype} {source} {options}"


def _use_mountinfo(monkeypatch, tmp_path: Path, lines: list[str]) -> None:
    fake = tmp_path / "mountinfo"
    fake.write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(usage, "MOUNTINFO", fake)


def _chroot_mountinfo() -> list[str]:
    """This machine's mounts as a chroot sees them: /proc, /sys and /dev, but nothing at /."""
    keep = [m for m in REAL if m.mountpoint in ("/proc", "/sys", "/dev")]
    return [_line(20 + i, m.majmin, m.mountpoint, m.fstype, m.source) for i, m in enumerate(keep)]


def _block_devices() -> list[str]:
    names = sorted(p.name for p in sysfs.SYS_BLOCK.iterdir())
    require(bool(names), "no block devices in sysfs")
    return names


def _root_disk() -> str | None:
    name = sysfs.name_for_rdev(os.stat("/").st_dev)
    return sysfs.whole_disk(name) if name else None


def test_in_a_chroot_every_block_device_is_refused(monkeypatch, tmp_path):
    _use_mountinfo(monkeypatch, tmp_path, _chroot_mountinfo())
    system = usage.system_disks(usage.read_mounts())
    assert system.unknown and "/ is not a mount point" in system.unknown
    refused = {name: usage.block_usage(name).system_reason for name in _block_devices()}
    for name, reason in refused.items():
        # Only a loop device over a visible, unclaimed file may pass; every other device is refused.
        assert reason or usage.provably_not_system(name), f"{name} was not refused in a chroot"
        if not name.startswith("loop"):
            assert reason, name
    others = [n for n, r in refused.items() if n != _root_disk() and r]
    assert all("cannot be determined" in refused[n] for n in others)
    root_disk = _root_disk()
    if root_disk is not None:  # the disk under the chroot's own / is named as the system
        assert refused[root_disk] == f"{root_disk} holds the running system (/)"


def test_in_a_chroot_the_disk_under_slash_is_refused_before_anything_is_opened(monkeypatch, tmp_path):
    root_disk = _root_disk()
    require(root_disk is not None and Path(f"/dev/{root_disk}").exists(), "/ is not on a visible block device")
    _use_mountinfo(monkeypatch, tmp_path, _chroot_mountinfo())
    probe = probe_target(f"/dev/{root_disk}")
    with pytest.raises(SystemDiskRefused, match="running system"):
        probe.refuse_if_unsafe()


def test_an_unattached_loop_device_is_refused_in_a_chroot(monkeypatch, tmp_path):
    free = [n for n in _block_devices() if n.startswith("loop") and not sysfs.loop_backing_file(n)]
    require(bool(free), "no unattached loop device")
    _use_mountinfo(monkeypatch, tmp_path, _chroot_mountinfo())
    reason = usage.block_usage(free[0]).system_reason
    assert reason and "cannot be determined" in reason and "/ is not a mount point" in reason


def test_a_loop_device_over_a_visible_file_is_provably_not_the_system_unless_claimed(monkeypatch, tmp_path):
    require_root()
    require_tool("losetup")
    _use_mountinfo(monkeypatch, tmp_path, _chroot_mountinfo())
    with loop_device(make_image(tmp_path / "spare.img", 4 * MIB)) as dev:
        name = Path(dev).name
        assert usage.block_usage(name).system_reason is None
        probe_target(dev).refuse_if_unsafe()  # nothing to refuse: an ordinary spare
        # Claimed exclusively (as a mount in another namespace would), it is no longer provably other.
        held = os.open(dev, os.O_RDONLY | os.O_EXCL)
        try:
            reason = usage.block_usage(name).system_reason
            assert reason and "cannot be determined" in reason
            with pytest.raises(SystemDiskRefused):
                probe_target(dev).refuse_if_unsafe()
        finally:
            os.close(held)


def test_an_overlay_root_whose_layers_are_out_of_sight_refuses_every_device(monkeypatch, tmp_path):
    layers = "lowerdir=/var/lib/docker/overlay2/l/A:/var/lib/docker/overlay2/l/B,upperdir=/var/lib/docker/x/diff"
    _use_mountinfo(monkeypatch, tmp_path, [_line(27, "0:99", "/", "overlay", "overlay", f"rw,{layers}")])
    system = usage.system_disks(usage.read_mounts())
    assert system.unknown == "the disk under / (overlay from overlay) is not known"
    for name in _block_devices():
        if not name.startswith("loop"):
            assert usage.block_usage(name).system_reason, name


def test_an_overlay_root_is_followed_to_the_disk_of_its_layers(monkeypatch, tmp_path):
    disk = next((n for n in _block_devices() if not sysfs.is_partition(n) and sysfs.attr(n, "dev")), None)
    require(disk is not None, "no block device in sysfs")
    assert disk is not None
    majmin = sysfs.attr(disk, "dev") or ""
    lines = [
        _line(27, "0:99", "/", "overlay", "overlay", "rw,lowerdir=/run/live/rootfs/fs.squashfs/,upperdir=/run/o/rw"),
        _line(28, majmin, "/run/live/rootfs/fs.squashfs", "squashfs", f"/dev/{disk}"),
        _line(29, "0:98", "/run/o", "tmpfs", "tmpfs"),
    ]
    _use_mountinfo(monkeypatch, tmp_path, lines)
    system = usage.system_disks(usage.read_mounts())
    assert system == usage.SystemDisks({disk: "/"}, None)
    assert usage.block_usage(disk).system_reason == f"{disk} holds the running system (/)"


def test_a_root_with_an_anonymous_device_number_is_named_by_its_source(monkeypatch, tmp_path):
    root = next((m for m in REAL if m.mountpoint == "/" and m.source.startswith("/dev/")), None)
    require(root is not None and Path(root.source).exists(), "/ is not on a visible /dev node")
    assert root is not None
    # btrfs reports 0:NN in mountinfo; the source names the device.
    _use_mountinfo(monkeypatch, tmp_path, [_line(27, "0:77", "/", "btrfs", root.source)])
    system = usage.system_disks(usage.read_mounts())
    assert system.unknown is None and system.disks == dict.fromkeys(usage.system_disks(REAL).disks, "/")


@pytest.mark.parametrize(
    ("fstype", "source", "unknown"),
    [("tmpfs", "tmpfs", False), ("rootfs", "rootfs", False), ("nfs4", "10.0.0.1:/srv/root", True)],
)
def test_ram_roots_have_no_system_disk_and_network_roots_are_unknown(monkeypatch, tmp_path, fstype, source, unknown):
    _use_mountinfo(monkeypatch, tmp_path, [_line(27, "0:66", "/", fstype, source)])
    system = usage.system_disks(usage.read_mounts())
    assert system.disks == {}
    assert (system.unknown is not None) == unknown


def _remote_facts(*mount_lines: str) -> remote_probe.RemoteFacts:
    """A remote probe's output for disk sda (8:0) with partition sda2 (8:2), and the given mounts."""
    lines = ["name=sda", "attr:dev=8:0", "part=sda2 8:2", *(f"mount={line}" for line in mount_lines)]
    return remote_probe.parse_probe_output("\n".join(lines))


def test_a_remote_in_a_chroot_refuses_its_disks() -> None:
    facts = _remote_facts(_line(22, "0:21", "/proc", "proc", "proc"))
    reason = remote_probe.remote_usage(facts).system_reason
    assert (
        reason
        == "sda may hold the remote's running system: its disk cannot be determined (/ is not a mount point there)"
    )


def test_a_remote_btrfs_root_is_named_by_its_source() -> None:
    facts = _remote_facts(_line(27, "0:45", "/", "btrfs", "/dev/sda2"))
    usage_ = remote_probe.remote_usage(facts)
    assert usage_.mountpoints == ("/",)
    assert usage_.system_reason == "sda holds the remote's running system (/)"


def test_a_remote_running_from_ram_leaves_an_unmounted_disk_free() -> None:
    facts = _remote_facts(_line(1, "0:2", "/", "rootfs", "rootfs"), _line(22, "0:21", "/proc", "proc", "proc"))
    usage_ = remote_probe.remote_usage(facts)
    assert usage_.system_reason is None and usage_.mountpoints == ()
