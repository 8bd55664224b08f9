"""Read-back verification: full, or NIST SP 800-88 representative sampling.

Sampling: the medium is cut into >= 1000 equal subsections (equal to within one block); in each, two
non-overlapping pseudo-random locations of at least 6% of the subsection are read (so >= 5% each and
>= 10% overall), the first location of the first subsection starts at block 0 and the last one of
the last subsection ends at the last block. Locations come from an AES-CTR keystream keyed by the
recorded seed, so ``sample_plan(size, block, seed)`` regenerates them exactly, on any machine.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from imaging import compare
from imaging.blockio import Buffer, TargetIO
from imaging.errors import Cancelled
from imaging.iopool import run_workers, worker_count
from imaging.overwrite_pass import DEFAULT_CHUNK, segments
from imaging.patterns import Pattern, aligned_buffer
from imaging.pipeline import Segment
from imaging.result import VerificationResult, VerifyMode

if TYPE_CHECKING:
    import numpy as np

MIN_SUBSECTIONS = 1000
LOCATIONS_PER_SUBSECTION = 2
LOCATION_PERCENT = 6  # of its subsection: above NIST's 5%, so two of them exceed 10% coverage
# Reads in flight (imaging/iopool.py): as for writing, four kept the device busiest at 4 GiB; each
# reader compares its chunk (and regenerates a random pattern's keystream) while the others' reads
# are on the device.
READERS = 4
RANDOM_READERS = 4


@dataclass(frozen=True)
class SamplePlan:
    seed_hex: str
    subsections: int
    locations: tuple[Segment, ...]  # (offset, length) in bytes, sorted, non-overlapping
    size_bytes: int

    @property
    def bytes_sampled(self) -> int:
        return sum(length for _, length in self.locations)

    @property
    def coverage(self) -> float:
        return self.bytes_sampled / self.size_bytes if self.size_bytes else 0.0


def _keystream_u64(seed: bytes, count: int) -> np.ndarray:
    import numpy as np  # only sampling needs it: a full verification starts without it

    key = hashlib.sha256(b"device-factory sample plan v1\0" + seed).digest()
    encryptor = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
    raw = encryptor.update(bytes(count * 8))
    return np.frombuffer(raw, dtype="<u8")


def sample_plan(size_bytes: int, block: int, seed: bytes, subsections: int = MIN_SUBSECTIONS) -> SamplePlan | None:
    """The sample locations for a medium, or None when it is too small to sample (read it all)."""
    import numpy as np

    if subsections < MIN_SUBSECTIONS:
        raise ValueError(f"NIST sampling needs at least {MIN_SUBSECTIONS} subsections")
    nblocks = size_bytes // block
    if nblocks < subsections * LOCATIONS_PER_SUBSECTION:
        return None
    k = subsections
    bounds = (np.arange(k + 1, dtype=np.int64) * nblocks) // k
    lengths = np.diff(bounds)
    loc_len = (lengths * LOCATION_PERCENT + 99) // 100  # ceil(6% of the subsection), >= 1 block
    free = lengths - LOCATIONS_PER_SUBSECTION * loc_len
    rand = _keystream_u64(seed, 2 * k).reshape(k, 2)
    cuts = (rand % (free + 1).astype(np.uint64)[:, None]).astype(np.int64)
    cuts.sort(axis=1)
    cuts[0, 0] = 0  # first block included
    cuts[-1, 1] = free[-1]  # last block included
    first = bounds[:-1] + cuts[:, 0]
    second = bounds[:-1] + cuts[:, 1] + loc_len
    starts = np.empty(2 * k, dtype=np.int64)
    starts[0::2] = first
    starts[1::2] = second
    lens = np.repeat(loc_len, 2)
    locations = [(int(s) * block, int(n) * block) for s, n in zip(starts, lens, strict=True)]
    tail = size_bytes - nblocks * block
    if tail:  # a regular file's partial last block belongs to the last location
        offset, length = locations[-1]
        locations[-1] = (offset, length + tail)
    return SamplePlan(seed.hex(), k, tuple(locations), size_bytes)


@dataclass(frozen=True)
class Expected:
    """What the medium must contain after the erase.

    ``pattern`` set: exactly that pattern. ``pattern`` None: a firmware erase with a vendor-defined
    result; each location must read as zeros or differ from its pre-erase fingerprint ``before``.
    """

    label: str
    pattern: Pattern | None
    before: Mapping[int, bytes] | None = None


def read_segments(io: TargetIO, regions: Iterable[Segment], chunk: int) -> list[Segment]:
    return [seg for start, length in regions for seg in segments(io, chunk, start, start + length)]


def _digest(data: memoryview) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def fingerprint(io: TargetIO, segs: list[Segment], chunk: int = DEFAULT_CHUNK) -> dict[int, bytes]:
    """Digest of each segment before a firmware erase, to prove afterwards that it changed."""
    buf = aligned_buffer(chunk)
    out: dict[int, bytes] = {}
    for offset, length in segs:
        io.read_into(buf, length, offset)
        out[offset] = _digest(memoryview(buf)[:length])
    return out


@dataclass
class Tally:
    """What a verification read and found wrong; shared by the local and the remote verifier."""

    bytes_read: int = 0
    mismatches: int = 0
    first_mismatch: int | None = None

    def bad(self, offset: int, count: int) -> None:
        self.mismatches += count
        if self.first_mismatch is None or offset < self.first_mismatch:
            self.first_mismatch = offset

    def result(self, expected: Expected, plan: SamplePlan | None, size: int, wanted: int) -> VerificationResult:
        """The verification as recorded: ``plan`` is the sample read, ``None`` for a full read-back;
        it passes only with no mismatch and every one of the ``wanted`` bytes read."""
        pattern_seed = expected.pattern.seed_hex if expected.pattern is not None else None
        return VerificationResult(
            mode=VerifyMode.SAMPLE if plan is not None else VerifyMode.FULL,
            expected_pattern=expected.label,
            seed_hex=plan.seed_hex if plan is not None else pattern_seed,
            bytes_read=self.bytes_read,
            coverage=self.bytes_read / size if size else 0.0,
            subsections=plan.subsections if plan is not None else 1,
            locations=len(plan.locations) if plan is not None else 1,
            mismatches=self.mismatches,
            first_mismatch_offset=self.first_mismatch,
            passed=self.mismatches == 0 and self.bytes_read == wanted,
        )


def _mismatch(expected: Expected, buf: Buffer, want: Buffer | None, offset: int, length: int) -> tuple[int, int] | None:
    """(index of the first wrong byte, wrong bytes) in the chunk ``buf`` read from ``offset``,
    None if it is right.

    ``want`` holds the chunk's expected bytes for the random pattern (None for a constant one).
    """
    pattern = expected.pattern
    if pattern is None:  # a firmware erase: zeros, or anything that differs from before
        if compare.all_bytes(buf, length, 0):
            return None
        before = expected.before.get(offset) if expected.before else None
        return None if before is not None and _digest(memoryview(buf)[:length]) != before else (0, length)
    constant = pattern.constant_byte
    if constant is not None:
        return None if compare.all_bytes(buf, length, constant) else compare.differences(buf, length, constant)
    assert want is not None
    return None if compare.same(buf, want, length) else compare.differences(buf, length, want)


def read_back(
    io: TargetIO,
    segs: list[Segment],
    expected: Expected,
    *,
    chunk: int = DEFAULT_CHUNK,
    on_bytes: Callable[[int], None] | None = None,
    cancel: threading.Event | None = None,
) -> Tally:
    """Read every segment and compare it with ``expected``: every byte read is checked."""
    tally = Tally()
    lock = threading.Lock()
    pattern = expected.pattern
    keystream = pattern is not None and pattern.constant_byte is None
    workers = worker_count(io, RANDOM_READERS if keystream else READERS, len(segs))
    buffers = [aligned_buffer(chunk) for _ in range(workers)]
    wants = [aligned_buffer(chunk) for _ in range(workers)] if keystream else None
    zeros = aligned_buffer(chunk) if keystream else b""

    def check(worker: int, offset: int, length: int) -> None:
        if cancel is not None and cancel.is_set():
            raise Cancelled("cancelled by operator during verification", offset)
        buf = buffers[worker]
        io.read_into(buf, length, offset)
        want = None
        if wants is not None and pattern is not None:
            want = wants[worker]  # regenerated from the key while other workers' reads are on the device
            pattern.fill(want, offset, length, zeros)
        wrong = _mismatch(expected, buf, want, offset, length)
        io.check_present(offset)
        with lock:
            if wrong is not None:
                tally.bad(offset + wrong[0], wrong[1])
            tally.bytes_read += length
            if on_bytes is not None:
                on_bytes(tally.bytes_read)

    run_workers(segs, check, workers)
    return tally


def verify(
    io: TargetIO,
    expected: Expected,
    mode: VerifyMode,
    *,
    plan: SamplePlan | None,
    chunk: int = DEFAULT_CHUNK,
    on_bytes: Callable[[int], None] | None = None,
    cancel: threading.Event | None = None,
) -> VerificationResult:
    """Read back the target (all of it, or ``plan``'s locations) and compare with ``expected``.

    With mode SAMPLE and no plan (medium too small to sample) everything is read and the result
    says FULL.
    """
    io.drop_cache()
    sampled = mode is VerifyMode.SAMPLE and plan is not None
    regions = list(plan.locations) if sampled and plan is not None else [(0, io.size)]
    segs = read_segments(io, regions, chunk)
    tally = read_back(io, segs, expected, chunk=chunk, on_bytes=on_bytes, cancel=cancel)
    io.check_present()
    return tally.result(expected, plan if sampled else None, io.size, sum(n for _, n in segs))
