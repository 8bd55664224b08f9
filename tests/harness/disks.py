"""Helpers for the imaging tests: targets with planted data, loop devices, byte-exact checks."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import os
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from imaging.commands import CommandRunner
from imaging.firmware_marker import MARKER_COUNT
from imaging.probe import Probe, probe_target, with_firmware_info

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "firmware"
MIB = 1 << 20
PLANT = b"POLICE-EVIDENCE-"  # 16 bytes, repeated: trivially recognisable if anything survives


def make_image(path: Path, size: int) -> Path:
    """A file of ``size`` bytes full of planted data."""
    block = PLANT * (MIB // len(PLANT))
    with open(path, "wb") as f:
        remaining = size
        while remaining:
            n = min(remaining, len(block))
            f.write(block[:n])
            remaining -= n
    return path


def assert_untouched_but_markers(path: Path, size: int, block: int = 4096) -> None:
    """Every block of ``path`` still holds the planted data, except at most the few random markers
    a firmware erase writes before its command (imaging/firmware_marker.py): nothing else was erased
    or pretended to be."""
    planted = (PLANT * (block // len(PLANT)))[:block]
    data = path.read_bytes()[:size]
    changed = [
        off for off in range(0, size, block) if data[off : off + block] != planted[: len(data[off : off + block])]
    ]
    assert len(changed) <= MARKER_COUNT, f"{len(changed)} blocks changed, first at {changed[:3]}"


def plant(target: str, size: int) -> None:
    """Overwrite a target (file or block device) with planted data, synced to the medium."""
    block = PLANT * (MIB // len(PLANT))
    fd = os.open(target, os.O_WRONLY)
    try:
        offset = 0
        while offset < size:
            n = min(len(block), size - offset)
            os.pwrite(fd, block[:n], offset)
            offset += n
        os.fsync(fd)
    finally:
        os.close(fd)


def expected_bytes(pattern: str, key_hex: str | None, offset: int, length: int) -> np.ndarray:
    if pattern == "zeros":
        return np.zeros(length, dtype=np.uint8)
    if pattern == "ones":
        return np.full(length, 0xFF, dtype=np.uint8)
    assert pattern == "random" and key_hex is not None and offset % 16 == 0
    enc = Cipher(algorithms.AES(bytes.fromhex(key_hex)), modes.CTR((offset // 16).to_bytes(16, "big")))
    return np.frombuffer(enc.encryptor().update(bytes(length)), dtype=np.uint8)


def assert_every_byte(target: str, size: int, pattern: str, key_hex: str | None = None) -> None:
    """Read the whole target, bypassing caches, and compare every byte with the pattern."""
    fd = os.open(target, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        offset = 0
        while offset < size:
            n = min(4 * MIB, size - offset)
            data = np.frombuffer(os.pread(fd, n, offset), dtype=np.uint8)
            assert data.size == n, f"short read at {offset}"
            want = expected_bytes(pattern, key_hex, offset, n)
            if not np.array_equal(data, want):
                bad = int(np.argmax(data != want))
                raise AssertionError(f"byte at offset {offset + bad} is {data[bad]:#x}, not {pattern}")
            offset += n
    finally:
        os.close(fd)


def fake_firmware_probe(path: Path, transport: str, media_type: str, runner: CommandRunner) -> Probe:
    """Probe a file, then present it as an NVMe/SATA device whose tools answer from fixtures."""
    base = probe_target(str(path))
    base = dataclasses.replace(base, transport=transport, media_type=media_type, rotational=media_type == "hdd")
    return with_firmware_info(base, runner)


def run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()


# <linux/loop.h>: struct loop_info64 begins lo_device, lo_inode (the backing file's st_dev, st_ino).
_LOOP_CLR_FD = 0x4C01
_LOOP_GET_STATUS64 = 0x4C05
_LOOP_INFO64_SIZE = 232


@contextlib.contextmanager
def loop_device(image: Path, *extra: str) -> Iterator[str]:
    """A loop device over ``image``, detached at the end only if it still backs ``image``.

    Tests detach their device mid-run to fault the engine. The kernel then hands the freed
    device to the next ``losetup --find`` (another xdist worker's test); a blind ``losetup -d``
    by name at teardown would detach that test's device under it.
    """
    backing = os.stat(image)
    dev = run("losetup", "--find", "--show", *extra, str(image))
    try:
        yield dev
    finally:
        detach_if_backed_by(dev, backing)


def detach_if_backed_by(dev: str, backing: os.stat_result) -> None:
    """Detach ``dev`` if its backing file is ``backing``; leave a device someone else attached."""
    try:
        fd = os.open(dev, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        try:
            info = fcntl.ioctl(fd, _LOOP_GET_STATUS64, bytes(_LOOP_INFO64_SIZE))
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # not attached to anything any more
                return
            raise
        st_dev, st_ino = struct.unpack_from("=QQ", info)
        if (st_dev, st_ino) == (backing.st_dev, backing.st_ino):
            # With this descriptor open the kernel only marks the device autoclear; the
            # detach completes when the descriptor closes below (what losetup -d does too).
            fcntl.ioctl(fd, _LOOP_CLR_FD)
    finally:
        os.close(fd)
