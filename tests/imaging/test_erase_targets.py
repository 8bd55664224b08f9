"""Erase and verify real targets: regular files and loop devices, through the same code path."""

from __future__ import annotations

import itertools
import os
import subprocess
import threading
from pathlib import Path

import pytest
from harness.disks import MIB, PLANT, assert_every_byte, loop_device, make_image, plant
from harness.requirements import require, require_root, require_tool

from imaging.engine import Progress, erase, verify_target
from imaging.errors import SystemDiskRefused, TargetInUse, TargetMounted
from imaging.probe import probe_target
from imaging.readback import sample_plan
from imaging.result import Level, VerifyMode
from imaging.usage import read_mounts

SIZE = 32 * MIB


@pytest.fixture(params=["file", "loop"])
def target(request, tmp_path: Path):
    """(path, size) of a target full of planted data: a regular file or a loop device over one."""
    image = make_image(tmp_path / "disk.img", SIZE)
    if request.param == "file":
        yield str(image), SIZE
        return
    require_root()
    require_tool("losetup")
    with loop_device(image) as dev:
        plant(dev, SIZE)
        yield dev, SIZE


@pytest.fixture
def loop(tmp_path: Path):
    require_root()
    require_tool("losetup")
    with loop_device(make_image(tmp_path / "loop.img", SIZE)) as dev:
        yield dev


@pytest.mark.parametrize("pattern", ["zeros", "ones", "random"])
def test_planted_data_is_gone_and_every_byte_matches_the_pattern(target, pattern):
    path, size = target
    result = erase(path, level=Level.CLEAR, method=pattern, verify=VerifyMode.FULL)
    assert result.ok, result.failure_reason
    assert result.method == f"overwrite-{pattern}"
    assert result.bytes_written == size
    assert result.io_mode == "direct"
    assert result.verification is not None
    assert result.verification.coverage == 1.0 and result.verification.mismatches == 0
    assert (result.pattern_seed_hex is not None) == (pattern == "random")
    assert result.tool_code_sha256 and len(result.tool_code_sha256) == 64
    assert_every_byte(path, size, pattern, result.pattern_seed_hex)


def test_auto_clear_samples_per_nist_and_records_the_seed(target):
    path, size = target
    result = erase(path, level=Level.CLEAR)
    assert result.ok, result.failure_reason
    check = result.verification
    assert check is not None and check.mode is VerifyMode.SAMPLE
    assert check.subsections >= 1000 and check.locations >= 2000
    assert check.coverage >= 0.10
    assert check.seed_hex is not None
    block = result.media.logical_sector_size if result.media.target_kind == "block" else 4096
    plan = sample_plan(size, block, bytes.fromhex(check.seed_hex))
    assert plan is not None and plan.bytes_sampled == check.bytes_read
    # The default overwrite is the keyed random stream (a medium cannot fake it by returning zeros).
    assert (result.method, result.pattern, check.expected_pattern) == ("overwrite-random", "random", "random")
    assert_every_byte(path, size, "random", result.pattern_seed_hex)


def test_verification_catches_a_byte_written_after_the_erase(target):
    path, size = target
    result = erase(path, level=Level.CLEAR, method="random", verify=VerifyMode.FULL)
    assert result.ok, result.failure_reason
    seed = bytes(range(16))
    block = result.media.logical_sector_size if result.media.target_kind == "block" else 4096
    plan = sample_plan(size, block, seed)
    assert plan is not None
    offset, length = plan.locations[777]
    tampered = offset + length // 2 + 3
    with open(path, "r+b") as f:
        f.seek(tampered)
        old = f.read(1)
        f.seek(tampered)
        f.write(bytes([old[0] ^ 0x5A]))
    full = verify_target(path, pattern="random", pattern_seed_hex=result.pattern_seed_hex)
    assert not full.passed and full.mismatches == 1 and full.first_mismatch_offset == tampered
    sampled = verify_target(
        path,
        pattern="random",
        pattern_seed_hex=result.pattern_seed_hex,
        mode=VerifyMode.SAMPLE,
        sample_seed_hex=seed.hex(),
    )
    assert sampled.mode is VerifyMode.SAMPLE
    assert not sampled.passed and sampled.first_mismatch_offset == tampered


def test_file_size_not_a_multiple_of_chunk_or_block(tmp_path):
    size = 9 * MIB + 4096 * 3 + 1234
    path = make_image(tmp_path / "odd.img", size)
    result = erase(str(path), level=Level.CLEAR, method="random", verify=VerifyMode.FULL)
    assert result.ok, result.failure_reason
    assert result.bytes_written == size
    assert_every_byte(str(path), size, "random", result.pattern_seed_hex)


def test_progress_reports_write_then_verify_up_to_the_total(tmp_path):
    path = make_image(tmp_path / "p.img", SIZE)
    events: list[Progress] = []
    result = erase(str(path), level=Level.CLEAR, method="ones", verify=VerifyMode.FULL, progress=events.append)
    assert result.ok
    phases = [e.phase for e in events]
    assert phases[0] == "write" and phases[-1] == "verify"
    writes = [e for e in events if e.phase == "write"]
    assert writes[-1].bytes_done == writes[-1].bytes_total == SIZE
    assert all(a.bytes_done <= b.bytes_done for a, b in itertools.pairwise(writes))
    assert events[-1].bytes_done == SIZE and events[-1].eta_s == 0
    assert all(e.rate_bps > 0 and e.pass_total == 1 for e in events)


def test_cancel_fails_closed_with_the_offset(tmp_path):
    path = make_image(tmp_path / "c.img", SIZE)
    cancel = threading.Event()
    result = erase(str(path), level=Level.CLEAR, method="zeros", cancel=cancel, progress=lambda _p: cancel.set())
    assert not result.ok and result.level_achieved is None
    assert "cancelled" in (result.failure_reason or "")
    assert result.failure_offset is not None and 0 < result.failure_offset < SIZE


def test_file_truncated_mid_pass_is_not_a_success(tmp_path):
    path = make_image(tmp_path / "t.img", SIZE)

    def truncate(_p: Progress) -> None:
        with open(path, "r+b") as f:
            f.truncate(SIZE // 2)

    result = erase(str(path), level=Level.CLEAR, method="zeros", progress=truncate)
    assert not result.ok
    assert "size changed" in (result.failure_reason or "")


def test_loop_device_detached_mid_pass_is_not_a_success(loop):
    detached = []

    def detach(_p: Progress) -> None:
        if not detached:
            subprocess.run(["losetup", "-d", loop], check=True)
            detached.append(True)

    result = erase(loop, level=Level.CLEAR, method="random", progress=detach)
    assert detached
    assert not result.ok
    assert "detached" in (result.failure_reason or "")


def test_read_only_loop_device_fails_closed(tmp_path):
    require_root()
    require_tool("losetup")
    image = make_image(tmp_path / "ro.img", SIZE)
    with loop_device(image, "-r") as dev:
        result = erase(dev, level=Level.CLEAR)
    assert not result.ok and result.bytes_written == 0
    assert "read-only" in (result.failure_reason or "")
    assert image.read_bytes()[: len(PLANT)] == PLANT


def test_mounted_filesystem_is_refused_before_writing(loop, tmp_path):
    require_tool("mkfs.ext4")
    subprocess.run(["mkfs.ext4", "-q", "-F", loop], check=True, capture_output=True)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", loop, str(mnt)], check=True)
    try:
        (mnt / "evidence.txt").write_text("still here")
        with pytest.raises(TargetMounted, match=str(mnt)):
            erase(loop, level=Level.CLEAR)
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
    subprocess.run(["mount", "-o", "ro", loop, str(mnt)], check=True)
    try:
        assert (mnt / "evidence.txt").read_text() == "still here"
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_backing_file_of_a_loop_device_is_in_use(tmp_path):
    require_root()
    require_tool("losetup")
    image = make_image(tmp_path / "backing.img", SIZE)
    with loop_device(image), pytest.raises(TargetInUse, match="backing file"):
        erase(str(image), level=Level.CLEAR)


def test_system_disk_is_refused():
    root = next((m for m in read_mounts() if m.mountpoint == "/"), None)
    if root is None:
        pytest.fail("/ is not a mount point here (a chroot?): see test_system_disk.py for that case")
    probe_path = None
    from imaging import sysfs

    name = sysfs.name_for_majmin(root.majmin)
    if name is not None and Path(f"/dev/{name}").exists():
        probe_path = f"/dev/{sysfs.whole_disk(name)}"
    require(
        probe_path is not None and Path(probe_path).exists(),
        "root filesystem is not on a block device visible here (overlay/container)",
    )
    assert probe_path is not None
    probe = probe_target(probe_path)
    assert probe.usage.system_reason
    with pytest.raises(SystemDiskRefused, match="running system"):
        probe.refuse_if_unsafe()


def test_filesystem_refusing_o_direct_falls_back_to_buffered(tmp_path):
    # ramfs has no O_DIRECT support (tmpfs gained it in Linux 6.6), so open(O_DIRECT) gets EINVAL.
    require_root()
    mnt = tmp_path / "ramfs"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "ramfs", "ramfs", str(mnt)], check=True)
    try:
        path = make_image(mnt / "disk.img", 8 * MIB + 100)
        result = erase(str(path), level=Level.CLEAR, method="random", verify=VerifyMode.FULL)
        assert result.ok, result.failure_reason
        assert result.io_mode == "buffered+fdatasync"
        assert_every_byte(str(path), 8 * MIB + 100, "random", result.pattern_seed_hex)
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


@pytest.mark.slow  # four loop devices erased at once
def test_several_loop_devices_erase_concurrently(tmp_path):
    require_root()
    require_tool("losetup")
    images = [make_image(tmp_path / f"c{i}.img", SIZE) for i in range(3)]
    results = {}
    with loop_device(images[0]) as a, loop_device(images[1]) as b, loop_device(images[2]) as c:
        threads = [
            threading.Thread(target=lambda d=d: results.__setitem__(d, erase(d, level=Level.CLEAR, method="random")))
            for d in (a, b, c)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for dev in (a, b, c):
            assert results[dev].ok, results[dev].failure_reason
            assert_every_byte(dev, SIZE, "random", results[dev].pattern_seed_hex)
    assert len({r.pattern_seed_hex for r in results.values()}) == 3


def test_device_held_open_exclusively_is_refused_before_writing(loop):
    holder = os.open(loop, os.O_RDONLY | os.O_EXCL)  # what mount or an md/dm holder does
    try:
        with pytest.raises(TargetInUse, match="busy"):
            erase(loop, level=Level.CLEAR)
    finally:
        os.close(holder)
    with open(loop, "rb") as f:
        assert f.read(len(PLANT)) == PLANT
