"""The loop-device helper's teardown never detaches a device another test has since attached.

Tests detach their own device mid-run to fault the engine; the kernel hands the freed device to
the next ``losetup --find``, which under xdist is often the other worker's test. CI once failed
two deploy tests this way: each one's device was detached under it by the other's teardown.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from harness.disks import MIB, loop_device, make_image
from harness.requirements import require_root, require_tool
from harness.waiting import wait_until


def _backing_file(dev: str) -> str:
    out = subprocess.run(["losetup", "-n", "-O", "BACK-FILE", dev], capture_output=True, text=True)
    return out.stdout.strip()


def test_teardown_leaves_a_device_reattached_to_another_file(tmp_path: Path):
    require_root()
    require_tool("losetup")
    ours = make_image(tmp_path / "ours.img", MIB)
    theirs = make_image(tmp_path / "theirs.img", MIB)
    with loop_device(ours) as dev:
        subprocess.run(["losetup", "-d", dev], check=True)
        # Reattach the very device the kernel just freed, as another worker's losetup might.
        subprocess.run(["losetup", dev, str(theirs)], check=True)
    try:
        assert _backing_file(dev) == str(theirs)
    finally:
        subprocess.run(["losetup", "-d", dev], check=False)


def test_teardown_detaches_its_own_device(tmp_path: Path):
    require_root()
    require_tool("losetup")
    ours = make_image(tmp_path / "ours.img", MIB)
    with loop_device(ours) as dev:
        assert _backing_file(dev) == str(ours)
    # LOOP_CLR_FD on a device something still holds open (udev's blkid probing it after the
    # attach) only marks it to clear on the last close: the detach completes a moment later.
    wait_until(lambda: _backing_file(dev) == "", message=f"{dev} detached")
    assert Path(f"/sys/block/{Path(dev).name}/size").read_text().strip() == "0"
