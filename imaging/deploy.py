"""Deploy a golden image (raw or zstd) to a target disk, verify it, and say exactly what landed.

Streaming, three stages at once, each on its own thread (``deploy_pipeline``): readers read (raw
images with O_DIRECT, two reads in flight) or decompress the next chunks into page-aligned slots,
this thread writes each slot with O_DIRECT while a hasher digests the same slot (both only read
it); pwritev, preadv, zstd and hashlib all release the GIL, and no stage waits for another except
for a slot. After the write the streamed digest must equal the manifest's (a corrupt image fails
here), then the written range is read back with O_DIRECT, a few reads in flight, and digested in
order, and that digest must match too.

The digest is the manifest's pieces digest where it has one (``piece_digest``): each slot's 4 MiB
pieces are hashed at once, one per CPU. Plain SHA-256 is one stream on one core (2.07 GB/s on
this host's 2-CPU machine, where O_DIRECT dd writes 2.5 GB/s): with it the deploy and its read-back
ran at the hash's pace, not the disk's. A manifest without a pieces digest (written before it
existed) is still checked against its SHA-256 that way.

The image's last partial block (size not a multiple of the target's O_DIRECT alignment) is written
read-modify-write: the target's block is read, the image's tail bytes are laid over its head and
the whole block is written back. Every write stays aligned and O_DIRECT, and the bytes past the end
of the image keep what the target held, so no padding lands on it. (A regular file whose own tail
is unaligned goes through ``TargetIO``'s buffered descriptor there, byte-exact.)

Refusals (system disk, mounted, in use, too small, image not matching its manifest) are raised
before anything is opened for writing. Every failure after that fails closed: ``ok=False`` with a
one-line reason and, where known, the offset. A failed deploy leaves a partial or unverified image
on the target.
"""

from __future__ import annotations

import mmap
import os
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

from imaging.blockio import TargetIO
from imaging.commands import utc_now
from imaging.deploy_pipeline import StagedPipeline, ordered_reads
from imaging.deploy_source import ImageRejected, ImageSource, ImageStreamError
from imaging.engine import PhaseReporter, ProgressCallback
from imaging.errors import Cancelled, EraseFailure, TargetRefused
from imaging.image_manifest import (
    ImageFormat,
    ImageManifest,
    expected_content_digest,
    load_manifest,
    manifest_path_for,
)
from imaging.iopool import worker_count
from imaging.overwrite_pass import DEFAULT_CHUNK, segments
from imaging.patterns import aligned_buffer
from imaging.piece_digest import content_hasher, digest_name, hashing_pool
from imaging.pipeline import Segment
from imaging.probe import Probe, probe_target
from imaging.result import FirstFailure, MediaIdentity

# Slots: one being read (per image reader), one being written and hashed at once, and spares so a
# stage that ran late catches up without stalling the others.
SLOTS = 4
# Reads of a raw image in flight, each into a slot of its own, as dd has readahead running while
# it writes. Measured here: within the noise of one reader (the request count, see _slot_buffer,
# was what mattered); two keep the disk's queue fed when the writer stalls.
IMAGE_READERS = 2
# Read-back: concurrent O_DIRECT reads (imaging/iopool.py's count on buffered I/O: one), and slots
# read ahead of the hasher beyond them.
READBACK_READERS = 3
READBACK_AHEAD = 2
# How often a phase re-checks that the target is still the device it opened. A check is several
# system calls (stat, fstat, a size ioctl, a sysfs read), each a GIL hand-off between the pipeline's
# threads: on a busy 2-core machine checking after every 8 MiB chunk cost up to a quarter of the
# deploy's time. Each phase still ends with a full check, so a target detached or replaced during
# it still fails the deploy; only the offset reported is coarser.
PRESENCE_CHECK_EVERY = 256 << 20


class TargetTooSmall(TargetRefused):
    """The target has fewer bytes than the image's uncompressed content."""


@dataclass(frozen=True)
class DeployResult:
    """Outcome of one deploy. ``ok`` is True only when written, digest-checked and (if asked) read back."""

    ok: bool
    image_name: str
    image_version: str
    image_sha256: str  # the manifest's digest of the uncompressed content
    bytes_written: int  # image bytes that reached the target
    written_sha256: str | None  # of the content streamed to the target; None if the stream stopped
    readback_sha256: str | None  # of the range read back from the target; None if not verified
    started_at: str
    ended_at: str
    failure_reason: str | None = None
    failure_offset: int | None = None
    image_format: ImageFormat = ImageFormat.RAW
    image_size_bytes: int = 0
    compressed_sha256: str | None = None  # of the zstd file as streamed
    media: MediaIdentity | None = None
    io_mode: str | None = None  # "direct" or "buffered+fdatasync"
    # What written_sha256 and readback_sha256 are: "sha256" of the content, or its pieces digest
    # ("pieces-sha256/<piece bytes>", imaging/piece_digest.py) where the manifest has one.
    content_digest: str = "sha256"
    image_pieces_sha256: str | None = None  # the manifest's pieces digest, if it has one

    @property
    def expected_digest(self) -> str:
        """What written_sha256 and readback_sha256 must equal: the manifest's digest of their kind."""
        return expected_content_digest(self.image_sha256, self.image_pieces_sha256)


def deploy_image(
    image_path: str | Path,
    target: str,
    *,
    manifest: ImageManifest | str | Path | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    verify: bool = True,
    chunk: int = DEFAULT_CHUNK,
) -> DeployResult:
    """Write ``image_path`` to ``target`` (block device or regular file) and verify it.

    ``manifest`` is an ``ImageManifest``, the path of its JSON, or None for ``<image>.manifest.json``.
    Raises ``ManifestError``, ``ProbeError``, ``TargetRefused`` (system disk, mounted, in use, and
    ``TargetTooSmall``) or ``ImageRejected`` before anything is written; returns
    ``DeployResult(ok=False, ...)`` for every failure after that.
    """
    image = str(image_path)
    if not isinstance(manifest, ImageManifest):
        manifest = load_manifest(manifest if manifest is not None else manifest_path_for(image))
    return deploy_probed(
        image, probe_target(target), manifest=manifest, progress=progress, cancel=cancel, verify=verify, chunk=chunk
    )


def deploy_probed(
    image: str,
    probe: Probe,
    *,
    manifest: ImageManifest,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    verify: bool = True,
    chunk: int = DEFAULT_CHUNK,
) -> DeployResult:
    """``deploy_image`` for an already probed target."""
    if chunk <= 0 or chunk % mmap.PAGESIZE:
        raise ValueError(f"chunk size {chunk} is not a positive multiple of {mmap.PAGESIZE}")
    probe.refuse_if_unsafe()
    if probe.size_bytes < manifest.size_bytes:
        raise TargetTooSmall(
            f"refusing {probe.path}: {probe.size_bytes} bytes, smaller than image "
            f"{manifest.name} {manifest.version} ({manifest.size_bytes} bytes)"
        )
    if _same_file(image, probe.path):
        raise TargetRefused(f"refusing {probe.path}: it is the image itself")
    run = _Run(manifest, probe, utc_now())
    if probe.read_only:
        run.fail("device is read-only (the kernel refuses writes)")
        return run.result()
    with _open_image(image, manifest) as source, hashing_pool(chunk, manifest.piece_bytes) as pool:
        io: TargetIO | None = None
        try:
            io = TargetIO(probe, write=True)
            run.io_mode = io.io_mode
            layout = _Layout(io, manifest.size_bytes, chunk)
            _write(io, layout, source, run, (progress, cancel), pool)
            if run.failure_reason is None and verify:
                _read_back(io, layout, run, (progress, cancel), pool)
        except TargetRefused:
            raise  # busy at open (O_EXCL): refused before anything was written
        except EraseFailure as failure:
            run.fail(failure.reason, failure.offset)
        except Exception as exc:  # anything else leaves the target in an unknown state
            run.fail(f"unexpected error, outcome unknown: {type(exc).__name__}: {exc}")
        finally:
            if io is not None:
                io.close()
    return run.result()


def _same_file(image: str, target: str) -> bool:
    try:
        return os.path.samefile(image, target)
    except OSError:
        return False


def _open_image(image: str, manifest: ImageManifest) -> ImageSource:
    source = ImageSource(image, compressed=manifest.format is ImageFormat.ZSTD)
    if manifest.format is ImageFormat.RAW and (actual := source.size_on_disk()) != manifest.size_bytes:
        source.close()
        raise ImageRejected(f"image {image} has {actual} bytes, its manifest says {manifest.size_bytes}")
    return source


@dataclass
class _Run(FirstFailure):
    """Facts accumulated while deploying, turned into the result at the end."""

    manifest: ImageManifest
    probe: Probe
    started_at: str
    io_mode: str | None = None
    bytes_written: int = 0
    written_sha256: str | None = None
    readback_sha256: str | None = None
    compressed_sha256: str | None = None

    def result(self) -> DeployResult:
        m = self.manifest
        return DeployResult(
            ok=self.failure_reason is None,
            image_name=m.name,
            image_version=m.version,
            image_sha256=m.sha256,
            bytes_written=self.bytes_written,
            written_sha256=self.written_sha256,
            readback_sha256=self.readback_sha256,
            started_at=self.started_at,
            ended_at=utc_now(),
            failure_reason=self.failure_reason,
            failure_offset=self.failure_offset,
            image_format=m.format,
            image_size_bytes=m.size_bytes,
            compressed_sha256=self.compressed_sha256,
            media=self.probe.identity(),
            io_mode=self.io_mode,
            content_digest=digest_name(m.piece_bytes),
            image_pieces_sha256=m.pieces_sha256,
        )

    def expected(self) -> tuple[str, str]:
        """The digest the content must have, and what a reason calls it."""
        return self.manifest.content_digest, self.manifest.content_digest_described


class _Layout:
    """The image's range on the target as pipeline segments, and how its last block is written."""

    def __init__(self, io: TargetIO, size: int, chunk: int) -> None:
        self.size = size
        self.align = io.align
        aligned_end = size - size % io.align
        self.segments: list[Segment] = list(segments(io, chunk, 0, aligned_end))
        self.tail_offset = aligned_end if aligned_end < size else None
        if self.tail_offset is not None:
            self.segments.append((aligned_end, size - aligned_end))
        # Through the O_DIRECT descriptor a partial block must be widened to a whole one.
        self.tail_rmw = self.tail_offset is not None and io.direct and self.tail_offset < io.direct_end

    def span(self, offset: int, length: int) -> int:
        """Bytes of the target to transfer for the segment at ``offset``."""
        return self.align if self.tail_rmw and offset == self.tail_offset else length


def _presence_check(io: TargetIO) -> Callable[[int], None]:
    """``io.check_present`` once per ``PRESENCE_CHECK_EVERY`` bytes of a phase's progress."""
    next_at = PRESENCE_CHECK_EVERY

    def check(done: int) -> None:
        nonlocal next_at
        if done >= next_at:
            io.check_present(done)
            next_at = done + PRESENCE_CHECK_EVERY

    return check


def _check_cancel(cancel: threading.Event | None, phase: str, offset: int) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled(f"cancelled by operator during {phase}", offset)


Watch = tuple[ProgressCallback | None, threading.Event | None]  # who hears of progress, and the cancel


def _write(io: TargetIO, layout: _Layout, source: ImageSource, run: _Run, watch: Watch, pool: Executor | None) -> None:
    progress, cancel = watch
    digest = content_hasher(run.manifest.piece_bytes, pool)
    reporter = PhaseReporter(progress, "write", 1, 1, layout.size)
    block = aligned_buffer(max(layout.align, mmap.PAGESIZE)) if layout.tail_rmw else None
    present = _presence_check(io)

    def read(buf: mmap.mmap, offset: int, length: int) -> None:
        if source.compressed:
            source.fill(buf, length)
        else:
            source.fill_at(buf, offset, length)

    def write_tail(buf: mmap.mmap, offset: int, length: int) -> None:
        assert block is not None
        io.read_into(block, layout.align, offset)  # keep what the target holds past the image
        block[:length] = memoryview(buf)[:length]
        io.write_at(block, layout.align, offset)

    def write(buf: mmap.mmap, offset: int, length: int) -> None:
        _check_cancel(cancel, "write", offset)
        if layout.span(offset, length) != length:
            write_tail(buf, offset, length)
        else:
            io.write_at(buf, length, offset)
        present(offset + length)
        run.bytes_written = offset + length
        reporter(run.bytes_written)

    def hash_chunk(buf: mmap.mmap, offset: int, length: int) -> None:
        digest.update(memoryview(buf)[:length])

    readers = 1 if source.compressed else IMAGE_READERS
    slots = [_slot_buffer(_slot_size(layout)) for _ in range(SLOTS + readers - 1)]
    pipeline = StagedPipeline(slots, produce=read, stages=(write, hash_chunk), caller_stage=0, producers=readers)
    pipeline.run(layout.segments)
    io.sync()
    io.check_present(layout.size)
    if not source.at_end():
        raise ImageStreamError(f"image is longer than its manifest's {layout.size} bytes", layout.size)
    run.written_sha256 = digest.hexdigest()
    run.compressed_sha256 = source.compressed_sha256
    manifest = run.manifest
    expected, named = run.expected()
    if run.written_sha256 != expected:
        raise ImageStreamError(
            f"image is corrupt: {named} of its content is {run.written_sha256}, the manifest says {expected}"
        )
    if manifest.compressed_sha256 is not None and run.compressed_sha256 != manifest.compressed_sha256:
        raise ImageStreamError(
            f"compressed image differs from its manifest: SHA-256 {run.compressed_sha256}, "
            f"expected {manifest.compressed_sha256}"
        )


def _read_back(io: TargetIO, layout: _Layout, run: _Run, watch: Watch, pool: Executor | None) -> None:
    progress, cancel = watch
    digest = content_hasher(run.manifest.piece_bytes, pool)
    reporter = PhaseReporter(progress, "verify", 1, 1, layout.size)
    present = _presence_check(io)
    done = 0

    def read(buf: mmap.mmap, offset: int, length: int) -> None:
        io.read_into(buf, layout.span(offset, length), offset)

    def hash_chunk(buf: mmap.mmap, offset: int, length: int) -> None:
        nonlocal done
        _check_cancel(cancel, "verification", offset)
        digest.update(memoryview(buf)[:length])
        present(offset + length)
        done = offset + length
        reporter(done)

    io.drop_cache()
    readers = worker_count(io, READBACK_READERS, len(layout.segments))
    slots = [_slot_buffer(_slot_size(layout)) for _ in range(readers + READBACK_AHEAD)]
    ordered_reads(slots, readers, layout.segments, read, hash_chunk)
    io.check_present()
    run.readback_sha256 = digest.hexdigest()
    expected, named = run.expected()
    if run.readback_sha256 != expected:
        raise EraseFailure(
            f"read-back verification failed: the target's {named} is {run.readback_sha256}, the image's {expected}"
        )


def _slot_size(layout: _Layout) -> int:
    largest = max((length for _, length in layout.segments), default=0)
    return max(largest, layout.align, mmap.PAGESIZE)


def _slot_buffer(size: int) -> mmap.mmap:
    """A page-aligned slot, on huge pages where granted (``aligned_buffer`` says why that matters)."""
    return aligned_buffer(size)
