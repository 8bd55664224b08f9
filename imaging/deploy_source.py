"""Golden-image readers for deploy: raw or zstd, read straight into the caller's aligned buffers.

A raw image is read with O_DIRECT straight into the caller's page-aligned slots when its filesystem
allows it: no copy out of the page cache (on a busy 2-core machine that copy cost as much CPU as
dd's whole run), and a multi-gigabyte image does not evict everything else from memory. The last
unaligned bytes, and every read on a filesystem that refuses O_DIRECT, go through the page cache.
The zstd reader decompresses with ``zstandard``'s streaming reader (the C backend releases the GIL
while decompressing) and hashes the compressed bytes as they go by, so an optional digest of the
compressed file costs no extra pass; that hashing runs on a thread of its own, because the
decompressing thread is the deploy's slowest stage and hashing there made it slower still.
Whatever goes wrong with the image while streaming is an ``ImageStreamError``: the deploy turns it
into a failed result at the offset where it happened.
"""

from __future__ import annotations

import errno
import hashlib
import io
import mmap
import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

import zstandard

from imaging.blockio import Buffer
from imaging.errors import EraseFailure, ImagingError
from imaging.piece_digest import PieceHasher

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# Compressed bytes per read from the image file: each read is a call back into Python (and a GIL
# hand-off between the pipeline's threads), so few large ones.
ZSTD_READ_SIZE = 4 << 20
MEASURE_CHUNK = 8 << 20
DIRECT_READ_ALIGN = 4096  # offsets and lengths of O_DIRECT reads (4Kn and 512e disks alike)


class ImageRejected(ImagingError):
    """The image file cannot be what its manifest describes; raised before anything is written."""


class ImageStreamError(EraseFailure):
    """The image turned out unreadable, corrupt, truncated or too long while it was being streamed."""


def _is_zstd_frame(head: bytes) -> bool:
    # A zstd stream starts with a frame or a skippable frame (magic 0x184D2A50..5F, little-endian).
    return head == ZSTD_MAGIC or (len(head) == 4 and head[1:] == b"\x2a\x4d\x18" and head[0] & 0xF0 == 0x50)


def looks_like_zstd(path: str) -> bool:
    with open(path, "rb") as f:
        return _is_zstd_frame(f.read(4))


# Compressed reads queued for the hashing thread (ZSTD_READ_SIZE each) before the reader waits.
_HASH_QUEUE = 4


class _HashingReader:
    """File-like view of the compressed file that hashes every byte the decompressor pulls.

    The hashing is done by a thread of its own (hashlib releases the GIL), fed the bytes objects
    the reads return; :meth:`hexdigest` waits for it to catch up. Reads after that, or after
    :meth:`close`, are hashed in place.
    """

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._digest = hashlib.sha256()
        self._pending: queue.Queue[bytes | None] = queue.Queue(maxsize=_HASH_QUEUE)
        self._thread: threading.Thread | None = threading.Thread(
            target=self._hash, name="deploy-zstd-hash", daemon=True
        )
        self._thread.start()

    def _hash(self) -> None:
        while (data := self._pending.get()) is not None:
            self._digest.update(data)

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        if self._thread is not None:
            self._pending.put(data)
        else:
            self._digest.update(data)
        return data

    def hexdigest(self) -> str:
        """SHA-256 of every byte read so far."""
        self.close()
        return self._digest.hexdigest()

    def close(self) -> None:
        if self._thread is not None:
            self._pending.put(None)
            self._thread.join()
            self._thread = None


class ImageSource:
    """Sequential reader of an image's uncompressed content; ``fill`` it in order, then ``finish``."""

    def __init__(self, path: str, *, compressed: bool) -> None:
        self.path = path
        self.compressed = compressed
        try:
            self._file: BinaryIO = open(path, "rb", buffering=0)  # closed by close()
        except OSError as exc:
            raise ImageRejected(f"cannot open image {path}: {exc.strerror}") from exc
        try:
            os.posix_fadvise(self._file.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
        except OSError:
            pass  # advisory
        self._hashing: _HashingReader | None = None
        self._reader: io.RawIOBase | BinaryIO = self._file
        if compressed:
            with open(path, "rb") as probe:
                if not _is_zstd_frame(probe.read(4)):
                    self._file.close()
                    raise ImageRejected(f"image {path} is not zstd-compressed (no zstd frame magic)")
            self._hashing = _HashingReader(self._file)
            self._reader = zstandard.ZstdDecompressor().stream_reader(
                self._hashing, read_size=ZSTD_READ_SIZE, read_across_frames=True, closefd=False
            )
        self.position = 0
        self._position_lock = threading.Lock()
        self._direct_fd = None if compressed else _open_direct(path)
        self._direct_ok = self._direct_fd is not None

    def size_on_disk(self) -> int:
        return os.fstat(self._file.fileno()).st_size

    def readinto(self, view: memoryview) -> int:
        """Read up to ``len(view)`` bytes of content; 0 only at the end of the content."""
        try:
            n = self._reader.readinto(view) or 0
        except zstandard.ZstdError as exc:
            raise ImageStreamError(f"image is corrupt: {exc}", self.position) from exc
        except OSError as exc:
            raise ImageStreamError(f"image read failed: {exc.strerror or exc}", self.position) from exc
        self.position += n
        return n

    def fill(self, buf: Buffer, length: int) -> None:
        """Read the next ``length`` bytes of content into ``buf[:length]``; short content is an error."""
        view = memoryview(buf)[:length]
        got = self._fill_direct(view) if isinstance(buf, mmap.mmap) else 0
        while got < length:
            n = self.readinto(view[got:])
            if n == 0:
                raise ImageStreamError(f"image is truncated: it ended after {self.position} bytes", self.position)
            got += n

    def fill_at(self, buf: Buffer, offset: int, length: int) -> None:
        """Read the raw image's bytes ``[offset, offset + length)`` into ``buf[:length]``; short is an error.

        Positional, so several threads may read different ranges at once: one O_DIRECT read at a
        time leaves the disk idle between requests, where dd's buffered reads have the kernel's
        readahead in flight (a page-aligned ``buf`` is read around the page cache, as ``fill``)."""
        if self.compressed:
            raise ValueError("a compressed image is read in order (fill)")
        view = memoryview(buf)[:length]
        got = self._pread_direct(view, offset) if isinstance(buf, mmap.mmap) else 0
        while got < length:
            try:
                n = os.preadv(self._file.fileno(), [view[got:]], offset + got)
            except OSError as exc:
                raise ImageStreamError(f"image read failed: {exc.strerror or exc}", offset + got) from exc
            if n == 0:
                raise ImageStreamError(f"image is truncated: it ended after {offset + got} bytes", offset + got)
            got += n
        with self._position_lock:
            self.position = max(self.position, offset + length)

    def _fill_direct(self, view: memoryview) -> int:
        """``fill``'s O_DIRECT head (an anonymous mmap is page-aligned); the bytes read."""
        if self.position % DIRECT_READ_ALIGN:
            return 0
        got = self._pread_direct(view, self.position)
        if got:
            self.position += got
            self._file.seek(self.position)
        return got

    def _pread_direct(self, view: memoryview, offset: int) -> int:
        """Read the aligned head of ``view`` from ``offset`` with O_DIRECT; the bytes read. Stops
        early at the end of the file or if the filesystem refuses (then the page cache path takes
        over for good; the descriptor stays open until ``close``, another thread may be using it)."""
        fd = self._direct_fd
        if fd is None or not self._direct_ok or offset % DIRECT_READ_ALIGN:
            return 0
        aligned = len(view) - len(view) % DIRECT_READ_ALIGN
        got = 0
        while got < aligned:
            try:
                n = os.preadv(fd, [view[got:aligned]], offset + got)
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise ImageStreamError(f"image read failed: {exc.strerror or exc}", offset + got) from exc
                self._direct_ok = False
                break
            got += n
            if n == 0 or n % DIRECT_READ_ALIGN:
                break  # end of the file; the buffered path reads what is left (nothing, or the tail)
        return got

    def _close_direct(self) -> None:
        if self._direct_fd is not None:
            os.close(self._direct_fd)
            self._direct_fd = None

    def at_end(self) -> bool:
        """True when the content has no byte left (a longer image does not match its manifest)."""
        if not self.compressed:
            self._file.seek(self.position)  # ``fill_at`` reads do not move the file's position
        return self.readinto(memoryview(bytearray(1))) == 0

    @property
    def compressed_sha256(self) -> str | None:
        """SHA-256 of the compressed bytes read so far (the whole file once ``at_end`` is True)."""
        return self._hashing.hexdigest() if self._hashing is not None else None

    def close(self) -> None:
        self._close_direct()
        if self._reader is not self._file:
            self._reader.close()
        if self._hashing is not None:
            self._hashing.close()
        self._file.close()

    def __enter__(self) -> ImageSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _open_direct(path: str) -> int | None:
    """A second, O_DIRECT descriptor on the image, or None where the filesystem refuses (tmpfs)."""
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_DIRECT)
    except OSError:
        return None


@dataclass(frozen=True)
class Measured:
    size: int  # of the uncompressed content
    sha256: str  # of the content
    pieces_sha256: str  # of the content, piece by piece (``piece_digest``)
    compressed_sha256: str | None  # of the zstd file


def measure_image(path: str, *, compressed: bool, piece_bytes: int, chunk: int = MEASURE_CHUNK) -> Measured:
    """Stream an image once and take both digests of its content, each on a thread of its own."""
    digest, pieces = hashlib.sha256(), PieceHasher(piece_bytes)
    buf = bytearray(chunk)
    view = memoryview(buf)
    size = 0
    with ImageSource(path, compressed=compressed) as source, ThreadPoolExecutor(1) as other:
        while n := source.readinto(view):
            both = other.submit(pieces.update, view[:n])
            digest.update(view[:n])
            both.result()
            size += n
        return Measured(size, digest.hexdigest(), pieces.hexdigest(), source.compressed_sha256)
