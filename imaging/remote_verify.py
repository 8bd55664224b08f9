"""Read-back verification of a remote disk, in batches, with the same sample plan as a local one.

Reads are O_DIRECT ``dd`` runs on the remote (so the page cache can neither hide nor fake what is
on the medium). Locations separated by less than ``MERGE_GAP`` are read by one ``dd`` and the gap
dropped here: starting a process costs more than reading a few hundred KiB, so small disks are read
in a few long runs and large ones location by location. A batch of runs is one command whose output
is compressed and base64-encoded on the remote, so an erased (zero) medium costs almost nothing to
transfer. The sampled bytes are compared here, against the expected pattern, as a local
verification does.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import math
import threading
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from imaging.commands import CommandRunner
from imaging.errors import Cancelled, EraseFailure
from imaging.methods.base import tail
from imaging.readback import Expected, Tally, sample_plan
from imaging.result import VerificationResult, VerifyMode

Piece = tuple[int, int]  # (offset, length) in bytes

MAX_PIECE = 8 << 20  # bytes per dd run; larger locations are split (fingerprints use the same split)
MERGE_GAP = 256 << 10  # neighbouring pieces closer than this share one dd run
MAX_DD_BLOCK = 1 << 20
BATCH_BYTES = 64 << 20  # raw bytes read per remote command
BATCH_PIECES = 160  # keeps each command line well under small servers' limits (dropbear)
MIN_BATCH_TIMEOUT = 120.0
ASSUMED_MIN_RATE = 4 << 20  # bytes/s a batch must at least reach before it is declared hung
FAILED_MARKER = "DF-READ-FAILED"
# $1 is the device, then (skip count block) triples; a failing dd names its offset on stderr.
READ_SCRIPT = (
    'dev=$1; shift; { while [ $# -ge 3 ]; do dd if="$dev" bs=$3 skip=$1 count=$2 iflag=direct,fullblock'
    ' 2>/dev/null || { echo "' + FAILED_MARKER + ' $(($1 * $3)) +$(($2 * $3))" >&2; exit 3; }; shift 3; done; }'
    " | gzip -1 | base64"
)


def split_pieces(regions: Sequence[Piece], limit: int = MAX_PIECE) -> list[Piece]:
    """Regions cut into pieces of at most ``limit`` bytes (one dd each), in order."""
    out: list[Piece] = []
    for offset, length in regions:
        for start in range(offset, offset + length, limit):
            out.append((start, min(limit, offset + length - start)))
    return out


def _dd_block(offset: int, length: int) -> int:
    """The largest power of two up to 1 MiB that divides both offset and length."""
    g = math.gcd(offset, length, MAX_DD_BLOCK)
    return g & -g


@dataclass(frozen=True)
class _Run:
    """One dd run: the span ``[offset, offset + length)`` and the pieces inside it."""

    offset: int
    length: int
    pieces: tuple[Piece, ...]


def _runs(pieces: Sequence[Piece]) -> list[_Run]:
    runs: list[_Run] = []
    for offset, length in pieces:
        if runs:
            last = runs[-1]
            end = last.offset + last.length
            if 0 <= offset - end <= MERGE_GAP and offset + length - last.offset <= MAX_PIECE:
                runs[-1] = _Run(last.offset, offset + length - last.offset, (*last.pieces, (offset, length)))
                continue
        runs.append(_Run(offset, length, ((offset, length),)))
    return runs


def _batches(runs: Sequence[_Run]) -> Iterator[list[_Run]]:
    batch: list[_Run] = []
    size = 0
    for run in runs:
        if batch and (len(batch) >= BATCH_PIECES or size + run.length > BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(run)
        size += run.length
    if batch:
        yield batch


def read_pieces(
    runner: CommandRunner,
    device: str,
    pieces: Sequence[Piece],
    *,
    cancel: threading.Event | None = None,
) -> Iterator[tuple[Piece, bytes]]:
    """Yield each piece with the bytes the remote read from it; ``EraseFailure`` on any shortfall."""
    for batch in _batches(_runs(pieces)):
        first = batch[0].offset
        if cancel is not None and cancel.is_set():
            raise Cancelled("cancelled by operator during verification", first)
        argv = ["sh", "-c", READ_SCRIPT, "df-read", device]
        for run in batch:
            block = _dd_block(run.offset, run.length)
            argv += [str(run.offset // block), str(run.length // block), str(block)]
        total = sum(run.length for run in batch)
        record = runner.run(argv, max(MIN_BATCH_TIMEOUT, total / ASSUMED_MIN_RATE))
        where = f"{device} [{first}, {batch[-1].offset + batch[-1].length})"
        failed = next((line for line in record.stderr.splitlines() if FAILED_MARKER in line), None)
        if failed is not None:
            offset = int(failed.split()[1])
            raise EraseFailure(f"read-back failed on the remote at {device} offset {offset}", offset)
        if record.returncode != 0:
            raise EraseFailure(f"read-back of {where} failed: {tail(record)}", first)
        try:
            data = gzip.decompress(base64.b64decode(record.stdout))
        except (binascii.Error, OSError, EOFError, zlib.error) as exc:
            raise EraseFailure(f"read-back of {where} returned unreadable output ({exc}): {tail(record)}") from exc
        if len(data) != total:
            raise EraseFailure(f"read-back of {where} returned {len(data)} of {total} bytes", first)
        view = memoryview(data)
        position = 0
        for run in batch:
            for offset, length in run.pieces:
                start = position + offset - run.offset
                yield (offset, length), bytes(view[start : start + length])
            position += run.length


def piece_digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def fingerprint_remote(
    runner: CommandRunner, device: str, pieces: Sequence[Piece], cancel: threading.Event | None = None
) -> dict[int, bytes]:
    """Digest of each piece before a firmware erase with a vendor-defined result."""
    return {offset: piece_digest(data) for (offset, _), data in read_pieces(runner, device, pieces, cancel=cancel)}


def check_piece(tally: Tally, expected: Expected, offset: int, data: bytes) -> None:
    """Compare one piece with what the erase must have left there."""
    actual = np.frombuffer(data, dtype=np.uint8)
    tally.bytes_read += len(data)
    pattern = expected.pattern
    if pattern is None:  # vendor-defined: zeros, or anything that differs from before the erase
        if not actual.any():
            return
        before: Mapping[int, bytes] = expected.before or {}
        if offset not in before or piece_digest(data) == before[offset]:
            tally.bad(offset, len(data))
        return
    if pattern.constant_byte == 0:
        wrong = np.flatnonzero(actual)
    else:
        want = bytearray(len(data))
        pattern.fill(want, offset, len(data), bytes(len(data)))
        wrong = np.flatnonzero(actual != np.frombuffer(bytes(want), dtype=np.uint8))
    if wrong.size:
        tally.bad(offset + int(wrong[0]), int(wrong.size))


def verify_remote(
    runner: CommandRunner,
    device: str,
    *,
    size: int,
    block: int,
    expected: Expected,
    mode: VerifyMode,
    seed: bytes,
    on_bytes: Callable[[int], None] | None = None,
    cancel: threading.Event | None = None,
) -> VerificationResult:
    """Read back the remote disk (all of it, or the NIST sample for ``seed``) and compare."""
    plan = sample_plan(size, block, seed)
    sampled = mode is VerifyMode.SAMPLE and plan is not None
    regions = list(plan.locations) if sampled and plan is not None else [(0, size)]
    pieces = split_pieces(regions)
    tally = Tally()
    for (offset, _), data in read_pieces(runner, device, pieces, cancel=cancel):
        check_piece(tally, expected, offset, data)
        if on_bytes is not None:
            on_bytes(tally.bytes_read)
    return tally.result(expected, plan if sampled else None, size, sum(length for _, length in pieces))


def sampled_pieces(size: int, block: int, seed: bytes, mode: VerifyMode) -> list[Piece]:
    """The pieces ``verify_remote`` will read for this seed and mode (to fingerprint them first)."""
    plan = sample_plan(size, block, seed)
    if mode is VerifyMode.SAMPLE and plan is not None:
        return split_pieces(list(plan.locations))
    return split_pieces([(0, size)])
