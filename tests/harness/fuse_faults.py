"""A FUSE filesystem exposing one image file that fails with EIO at chosen sectors.

Put a loop device on the exposed file and reads/writes of the loop device that touch those sectors
get a real EIO, which is how the erase engine's fault handling is tested without device-mapper.

Run standalone (the test fixture does this in a subprocess, so FUSE's threads never share a GIL
with the code under test):

    python tests/harness/fuse_faults.py IMAGE MOUNTPOINT --read-eio 2048:2056 --write-eio 4096:4104

Sector ranges are 512-byte sectors, half-open ``start:end``. The mount exposes ``/disk.img``.

``--discard-writes`` makes a medium that lies: every write is acknowledged and dropped, every read
returns zeros (what a failing or counterfeit drive can do, and what a zeros overwrite cannot tell
from a real erase).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

SECTOR = 512
EXPOSED = "disk.img"


def parse_ranges(values: list[str]) -> list[tuple[int, int]]:
    ranges = []
    for value in values:
        start, _, end = value.partition(":")
        ranges.append((int(start) * SECTOR, int(end or int(start) + 1) * SECTOR))
    return ranges


def overlaps(ranges: list[tuple[int, int]], offset: int, length: int) -> bool:
    return any(offset < end and start < offset + length for start, end in ranges)


def build_operations(
    image: str, read_eio: list[tuple[int, int]], write_eio: list[tuple[int, int]], discard_writes: bool = False
) -> object:
    from fuse import FuseOSError, Operations  # fusepy; imported here so the module imports without it

    class FaultyImage(Operations):
        def __init__(self) -> None:
            self.fd = os.open(image, os.O_RDWR)
            self.lock = threading.Lock()
            self.mounted_at = time.time()

        def getattr(self, path: str, fh: int | None = None) -> dict[str, float]:
            now = self.mounted_at
            if path == "/":
                return {"st_mode": stat.S_IFDIR | 0o755, "st_nlink": 2, "st_size": 0,
                        "st_ctime": now, "st_mtime": now, "st_atime": now}  # fmt: skip
            if path == "/" + EXPOSED:
                size = os.fstat(self.fd).st_size
                return {"st_mode": stat.S_IFREG | 0o600, "st_nlink": 1, "st_size": size,
                        "st_ctime": now, "st_mtime": now, "st_atime": now}  # fmt: skip
            raise FuseOSError(errno.ENOENT)

        def readdir(self, path: str, fh: int) -> list[str]:
            return [".", "..", EXPOSED]

        def open(self, path: str, flags: int) -> int:
            if path != "/" + EXPOSED:
                raise FuseOSError(errno.ENOENT)
            return 0

        def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
            if overlaps(read_eio, offset, size):
                raise FuseOSError(errno.EIO)
            if discard_writes:
                return bytes(max(0, min(size, os.fstat(self.fd).st_size - offset)))
            return os.pread(self.fd, size, offset)

        def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
            if overlaps(write_eio, offset, len(data)):
                raise FuseOSError(errno.EIO)
            if discard_writes:
                return len(data)  # acknowledged, never stored
            return os.pwrite(self.fd, data, offset)

        def truncate(self, path: str, length: int, fh: int | None = None) -> None:
            os.ftruncate(self.fd, length)

        def flush(self, path: str, fh: int) -> None:
            return None

        def fsync(self, path: str, datasync: int, fh: int) -> None:
            os.fdatasync(self.fd)

        def release(self, path: str, fh: int) -> None:
            return None

    return FaultyImage()


def main(argv: list[str] | None = None) -> None:
    from fuse import FUSE

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image")
    parser.add_argument("mountpoint")
    parser.add_argument("--read-eio", action="append", default=[], metavar="START:END")
    parser.add_argument("--write-eio", action="append", default=[], metavar="START:END")
    parser.add_argument("--discard-writes", action="store_true", help="acknowledge writes, store nothing, read zeros")
    args = parser.parse_args(argv)
    ops = build_operations(args.image, parse_ranges(args.read_eio), parse_ranges(args.write_eio), args.discard_writes)
    # direct_io: every read/write reaches this process, so the loop device above sees the EIO.
    FUSE(ops, args.mountpoint, foreground=True, direct_io=True, nothreads=False)  # type: ignore[arg-type]


@contextlib.contextmanager
def faulty_image(
    image: Path,
    mountpoint: Path,
    *,
    read_eio: list[str] = (),  # type: ignore[assignment]
    write_eio: list[str] = (),  # type: ignore[assignment]
    discard_writes: bool = False,
    timeout: float = 10.0,
) -> Iterator[Path]:
    """Mount the fault-injecting FS in a subprocess; yield the exposed file; unmount on exit."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, __file__, str(image), str(mountpoint)]
    argv += [f"--read-eio={r}" for r in read_eio] + [f"--write-eio={w}" for w in write_eio]
    argv += ["--discard-writes"] if discard_writes else []
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + timeout
        while not os.path.ismount(mountpoint):
            if proc.poll() is not None:
                raise RuntimeError(f"fuse_faults exited {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
            if time.monotonic() > deadline:
                raise RuntimeError("fuse_faults did not mount in time")
            time.sleep(0.05)
        yield mountpoint / EXPOSED
    finally:
        subprocess.run(["fusermount", "-u", "-z", str(mountpoint)], capture_output=True, check=False)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
