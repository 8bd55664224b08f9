"""Raw, aligned I/O on one target (block device or regular file), failing closed.

O_DIRECT is used wherever the filesystem accepts it, so writes reach the medium and read-backs come
from it rather than the page cache. Only when O_DIRECT is refused (tmpfs) does the target fall back
to buffered I/O with fdatasync plus a cache drop before reading, and ``io_mode`` says so.
"""

from __future__ import annotations

import errno
import mmap
import os
from collections.abc import Callable

from imaging import sysfs
from imaging.errors import DeviceVanished, EraseFailure, ReadOnlyTarget, TargetInUse
from imaging.probe import Probe, block_size_bytes

DIRECT = "direct"
BUFFERED = "buffered+fdatasync"
# Buffered mode syncs at least this often so dirty pages (and hidden write errors) do not pile up.
BUFFERED_SYNC_EVERY = 256 << 20
FILE_DIRECT_ALIGN = 4096
Buffer = mmap.mmap | memoryview | bytearray

_VANISHED = {errno.ENODEV, errno.ENXIO, errno.ENOENT, errno.ESTALE, errno.ENOMEDIUM}
_READ_ONLY = {errno.EROFS, errno.EPERM, errno.EACCES}


def failure_from_oserror(exc: OSError, action: str, offset: int | None) -> EraseFailure:
    """Map an errno to the failure class the result reports."""
    what = os.strerror(exc.errno) if exc.errno else str(exc)
    if exc.errno in _VANISHED:
        return DeviceVanished(f"device vanished during {action}: {what}", offset)
    if exc.errno in _READ_ONLY:
        return ReadOnlyTarget(f"device refused {action}: {what}", offset)
    if exc.errno == errno.EIO:
        return EraseFailure(f"I/O error during {action}", offset)
    if exc.errno == errno.ENOSPC:
        return DeviceVanished(f"no space during {action}: target shrank", offset)
    return EraseFailure(f"{action} failed: {what}", offset)


class TargetIO:
    """An open target. Not thread-safe for concurrent writers; one pipeline per target."""

    def __init__(self, probe: Probe, *, write: bool) -> None:
        self.probe = probe
        self.path = probe.path
        self.size = probe.size_bytes
        self.writable = write
        self._is_block = probe.kind == "block"
        self._loop_name = probe.name if probe.name and probe.name.startswith("loop") else None
        self._loop_autoclear = sysfs.loop_autoclear(self._loop_name) if self._loop_name else None
        self._buffered_fd: int | None = None
        self._unsynced = 0
        base = (os.O_RDWR if write else os.O_RDONLY) | os.O_CLOEXEC
        if self._is_block:
            # O_EXCL on a block device fails with EBUSY when it is mounted or claimed.
            base |= os.O_EXCL
        self.fd, self.direct, self.io_note = self._open(base)
        self.align = probe.logical_sector_size if self._is_block else FILE_DIRECT_ALIGN
        # Bytes past the last aligned block of a file go through the buffered descriptor.
        self.direct_end = self.size - self.size % self.align if self.direct else self.size
        self.check_present()

    @property
    def io_mode(self) -> str:
        return DIRECT if self.direct else BUFFERED

    def _open(self, flags: int) -> tuple[int, bool, str]:
        try:
            return os.open(self.path, flags | os.O_DIRECT), True, "O_DIRECT"
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise self._open_failure(exc) from exc
        try:
            fd = os.open(self.path, flags)
        except OSError as exc:
            raise self._open_failure(exc) from exc
        return fd, False, "O_DIRECT refused by the filesystem; buffered writes with fdatasync"

    def _open_failure(self, exc: OSError) -> Exception:
        if exc.errno == errno.EBUSY:
            return TargetInUse(f"refusing {self.path}: busy (mounted or claimed by another user)")
        return failure_from_oserror(exc, "open for writing" if self.writable else "open for reading", None)

    def _tail_fd(self) -> int:
        if self._buffered_fd is None:
            flags = (os.O_RDWR if self.writable else os.O_RDONLY) | os.O_CLOEXEC
            try:
                self._buffered_fd = os.open(self.path, flags)
            except OSError as exc:
                raise failure_from_oserror(exc, "open", self.direct_end) from exc
        return self._buffered_fd

    def _fd_for(self, offset: int, length: int) -> int:
        if offset >= self.direct_end:
            return self._tail_fd()
        if offset + length > self.direct_end:
            raise ValueError("I/O must not straddle the direct/buffered boundary")
        return self.fd

    def write_at(self, buf: Buffer, length: int, offset: int) -> None:
        fd = self._fd_for(offset, length)
        written = _vectored(os.pwritev, "write", fd, buf, length, offset)
        if written != length:
            raise EraseFailure(f"short write: {written} of {length} bytes", offset + written)
        if fd != self.fd or not self.direct:
            self._unsynced += length
            if self._unsynced >= BUFFERED_SYNC_EVERY:
                self.sync()

    def read_into(self, buf: Buffer, length: int, offset: int) -> None:
        fd = self._fd_for(offset, length)
        got = _vectored(os.preadv, "read", fd, buf, length, offset)
        if got != length:
            raise DeviceVanished(f"short read: {got} of {length} bytes (target shrank?)", offset + got)

    def sync(self) -> None:
        for fd in (self.fd, self._buffered_fd):
            if fd is None:
                continue
            try:
                os.fdatasync(fd)
            except OSError as exc:
                raise failure_from_oserror(exc, "fdatasync", None) from exc
        self._unsynced = 0

    def drop_cache(self) -> None:
        """Sync and evict cached pages so a following read-back comes from the medium."""
        self.sync()
        for fd in (self.fd, self._buffered_fd):
            if fd is not None:
                try:
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                except OSError:
                    pass  # advisory; O_DIRECT reads do not depend on it

    def current_size(self) -> int:
        try:
            if self._is_block:
                return block_size_bytes(self.fd)
            return os.fstat(self.fd).st_size
        except OSError as exc:
            raise failure_from_oserror(exc, "size check", None) from exc

    def check_present(self, offset: int | None = None) -> None:
        """Raise ``DeviceVanished`` if the target went away, was replaced or changed size."""
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise DeviceVanished(f"{self.path} disappeared: {exc.strerror}", offset) from exc
        if (st.st_dev, st.st_ino) != self.probe.inode or (self._is_block and st.st_rdev != self.probe.rdev):
            raise DeviceVanished(f"{self.path} now names a different device or file", offset)
        if not self._is_block and os.fstat(self.fd).st_nlink == 0:
            raise DeviceVanished(f"{self.path} was deleted", offset)
        size = self.current_size()
        if size != self.size:
            raise DeviceVanished(f"target size changed from {self.size} to {size} bytes", offset)
        if self._loop_name is not None:
            autoclear = sysfs.loop_autoclear(self._loop_name)
            # losetup -d on an open loop device only schedules the detach (autoclear) for the
            # last close: it is gone for the operator even though writes still succeed.
            if autoclear is None or (autoclear and not self._loop_autoclear):
                raise DeviceVanished(f"loop device {self._loop_name} was detached", offset)

    def close(self) -> None:
        for fd in (self.fd, self._buffered_fd):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._buffered_fd = None

    def __enter__(self) -> TargetIO:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _vectored(
    call: Callable[[int, list[memoryview], int], int], what: str, fd: int, buf: Buffer, length: int, offset: int
) -> int:
    """``os.pwritev``/``os.preadv`` of the first ``length`` bytes of ``buf``; an OS error becomes the
    engine's failure for that offset (EIO, ENOSPC, a vanished device, ...)."""
    try:
        return call(fd, [memoryview(buf)[:length]], offset)
    except OSError as exc:
        raise failure_from_oserror(exc, what, offset) from exc
