"""Random markers written before a firmware erase, so that a command that did nothing cannot pass.

A firmware erase is judged first by the drive's own word (the NVMe Sanitize Status log, ATA
SANITIZE STATUS, hdparm's exit status), then by reading back: zeros, or bytes that differ from before
the command. Both can be fooled together. The Sanitize Status log keeps saying "completed" after an
earlier sanitize, so a command that never started (a firmware bug, or a USB-to-NVMe bridge that
acknowledges admin commands it does not pass on) is followed by a log that reads as success; and an
SSD whose blocks were deallocated (TRIM, a reset that discarded the partitions) reads as zeros
while its cells still hold the data. QEMU's emulated SATA disk is a recorded example of the first
half: ``hdparm --security-erase`` exits 0 and erases nothing (tests/fixtures/firmware).

Random bytes written first into blocks the read-back will check make such a no-op visible: they
survive it, so those blocks read neither as zeros nor as changed, and verification fails. A real
erase removes them like everything else. The marker is one logical block at each of a few offsets
spread over the read-back's locations; on a drive that refuses the writes the erase fails before
the firmware command runs (a medium that cannot take a 4 KiB write is not one to certify).
"""

from __future__ import annotations

import os
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate

from imaging.blockio import TargetIO
from imaging.commands import CommandRunner
from imaging.errors import EraseFailure
from imaging.methods.base import tail
from imaging.patterns import aligned_buffer

MARKER_COUNT = 16  # spread over the disk: one survivor is enough to fail the read-back
MARKER_TIMEOUT = 120.0
FAILED = "DF-MARKER-FAILED"
# $1 is the device, then (block-number block-size) pairs: one O_DIRECT block of the remote's own
# random bytes at each (busybox and GNU dd both take oflag=direct; conv=notrunc for regular files).
WRITE_SCRIPT = (
    'dev=$1; shift; while [ $# -ge 2 ]; do dd if=/dev/urandom of="$dev" bs=$2 seek=$1 count=1'
    ' oflag=direct conv=notrunc 2>/dev/null || { echo "' + FAILED + ' $(($1 * $2))" >&2; exit 3; }; shift 2; done'
)


def marker_offsets(regions: Sequence[tuple[int, int]], block: int, count: int = MARKER_COUNT) -> list[int]:
    """Up to ``count`` block-aligned offsets spread evenly over the blocks of ``regions`` (the
    locations the read-back will check), each a whole block inside one region."""
    usable = [(start, length // block) for start, length in regions if start % block == 0 and length >= block]
    ends = list(accumulate(blocks for _, blocks in usable))
    total = ends[-1] if ends else 0
    picks = min(count, total)
    offsets: list[int] = []
    for i in range(picks):
        wanted = i * total // picks  # the block's index counted across all regions
        region = bisect_right(ends, wanted)
        first = ends[region - 1] if region else 0
        offsets.append(usable[region][0] + (wanted - first) * block)
    return offsets


def write_local_markers(io: TargetIO, offsets: Sequence[int]) -> None:
    """Write a fresh random block at each offset of an open target and flush it to the device."""
    buf = aligned_buffer(io.align)
    try:
        for offset in offsets:
            buf[:] = os.urandom(io.align)
            io.write_at(buf, io.align, offset)
        io.sync()
    finally:
        buf.close()


def write_remote_markers(runner: CommandRunner, device: str, offsets: Sequence[int], block: int) -> None:
    """The same on a remote machine, with its own ``dd`` and ``/dev/urandom``, in one command."""
    if not offsets:
        return
    argv = ["sh", "-c", WRITE_SCRIPT, "df-marker", device]
    for offset in offsets:
        argv += [str(offset // block), str(block)]
    record = runner.run(argv, MARKER_TIMEOUT)
    failed = next((line for line in record.stderr.splitlines() if FAILED in line), None)
    if failed is not None:
        raise EraseFailure(f"the drive refused a marker write at offset {failed.split()[1]}: not erased", None)
    if record.returncode != 0:
        raise EraseFailure(f"marker writes before the firmware erase failed: {tail(record)}", None)


def marker_note(count: int) -> str:
    return f"wrote random markers to {count} block(s) the read-back checks, before the firmware erase"
