"""Read-back verification: full, or NIST SP 800-88 representative sampling.

Sampling: the medium is cut into >= 1000 equal subsections (equal to within one block); in each, two
non-overlapping pseudo-random locations of at least 6% of the subsection are read (so >= 5% each and
>= 10% overall), the first location of the first subsection starts at block 0 and the last one of
the last subsection ends at the last block. Locations come from an AES-CTR keystream keyed by the
recorded seed, so ``sample_plan(size, block, seed)`` regenerates them exactly, on any machine.
"""

from __future__ import annotations

import hashlib
import mmap
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from imaging.blockio import TargetIO
from imaging.errors import Cancelled
from imaging.overwrite_pass import DEFAULT_CHUNK, PIPELINE_DEPTH, segments
from imaging.patterns import Pattern, aligned_buffer
from imaging.pipeline import Pipeline, Segment
from imaging.result import VerificationResult, VerifyMode

MIN_SUBSECTIONS = 1000
LOCATIONS_PER_SUBSECTION = 2
LOCATION_PERCENT = 6  # of its subsection: above NIST's 5%, so two of them exceed 10% coverage


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
    key = hashlib.sha256(b"device-factory sample plan v1\0" + seed).digest()
    encryptor = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
    raw = encryptor.update(bytes(count * 8))
    return np.frombuffer(raw, dtype="<u8")


def sample_plan(size_bytes: int, block: int, seed: bytes, subsections: int = MIN_SUBSECTIONS) -> SamplePlan | None:
    """The sample locations for a medium, or None when it is too small to sample (read it all)."""
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


def _compare(
    tally: Tally,
    expected: Expected,
    actual: np.ndarray,
    wanted: np.ndarray | None,
    data: memoryview,
    offset: int,
) -> None:
    n = actual.size
    wide = n % 8 == 0
    a = actual.view(np.uint64) if wide else actual
    if expected.pattern is None:
        if np.count_nonzero(a) == 0:
            return
        before = expected.before.get(offset) if expected.before else None
        if before is None or _digest(data) == before:
            tally.bad(offset, n)
        return
    assert wanted is not None
    w = wanted.view(np.uint64) if wide else wanted
    if expected.pattern.constant_byte == 0:
        same = np.count_nonzero(a) == 0
    else:
        same = bool(np.array_equal(a, w))
    if not same:
        diff = actual != wanted
        tally.bad(offset + int(np.argmax(diff)), int(np.count_nonzero(diff)))


def read_back(
    io: TargetIO,
    segs: list[Segment],
    expected: Expected,
    *,
    chunk: int = DEFAULT_CHUNK,
    on_bytes: Callable[[int], None] | None = None,
    cancel: threading.Event | None = None,
) -> Tally:
    tally = Tally()
    zeros = aligned_buffer(chunk)
    pattern = expected.pattern
    constant = None
    if pattern is not None and pattern.constant_byte is not None:
        constant = aligned_buffer(chunk)
        pattern.fill(constant, 0, chunk, zeros)

    # The worker only reads, so the medium stays busy while this thread generates the expected
    # bytes and compares (both release the GIL).
    expected_buf = aligned_buffer(chunk) if pattern is not None and constant is None else None

    def prepare(buf: mmap.mmap, offset: int, length: int) -> None:
        io.read_into(buf, length, offset)

    def consume(buf: mmap.mmap, offset: int, length: int) -> None:
        if cancel is not None and cancel.is_set():
            raise Cancelled("cancelled by operator during verification", offset)
        want = expected_buf
        if pattern is not None and want is not None:
            pattern.fill(want, offset, length, zeros)
        actual = np.frombuffer(buf, dtype=np.uint8, count=length)  # type: ignore[call-overload]
        source = constant if constant is not None else want
        wanted = None if pattern is None else np.frombuffer(source, dtype=np.uint8, count=length)  # type: ignore[call-overload]
        _compare(tally, expected, actual, wanted, memoryview(buf)[:length], offset)  # type: ignore[arg-type]
        tally.bytes_read += length
        io.check_present(offset)
        if on_bytes is not None:
            on_bytes(tally.bytes_read)

    slots = [aligned_buffer(chunk) for _ in range(PIPELINE_DEPTH)]
    Pipeline(slots, prepare, consume).run(segs)
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
