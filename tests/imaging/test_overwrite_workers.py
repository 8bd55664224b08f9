"""Several requests in flight (imaging/iopool.py) and the GIL-free comparison (imaging/compare.py):
progress stays gap-free, the first error stops every worker, and every byte is still checked."""

from __future__ import annotations

import os
import threading

import pytest

from imaging import compare
from imaging.engine import erase, verify_target
from imaging.errors import EraseFailure
from imaging.iopool import Watermark, run_workers
from imaging.overwrite_pass import DEFAULT_CHUNK
from imaging.patterns import aligned_buffer
from imaging.result import Level, VerifyMode

MIB = 1 << 20
SIZE = 16 * DEFAULT_CHUNK  # enough chunks for four workers


def test_watermark_reports_only_gap_free_progress() -> None:
    seen: list[int] = []
    mark = Watermark(seen.append)
    mark.done(8, 8)
    mark.done(16, 8)
    assert seen == [] and mark.total == 16  # chunk 0 is not done: nothing is known from offset 0
    mark.done(0, 8)
    assert seen == [24] and mark.mark == 24
    mark.done(32, 8)
    assert seen == [24] and mark.total == 32


def test_the_first_error_stops_every_worker_and_is_raised() -> None:
    done: list[int] = []
    lock = threading.Lock()

    def work(_worker: int, offset: int, _length: int) -> None:
        if offset == 10:
            raise OSError("bad chunk")
        with lock:
            done.append(offset)

    with pytest.raises(OSError, match="bad chunk"):
        run_workers(((i, 1) for i in range(10_000)), work, 4)
    assert len(done) < 100  # the others stopped at their next chunk


def test_of_several_failing_chunks_the_lowest_offset_is_reported() -> None:
    started = threading.Barrier(4)

    def work(_worker: int, offset: int, _length: int) -> None:
        if offset < 4:
            started.wait(timeout=10)  # all four chunks are in flight when they fail
            raise EraseFailure("I/O error during write", offset)

    with pytest.raises(EraseFailure) as failure:
        run_workers(((i, 1) for i in (3, 1, 0, 2)), work, 4)
    assert failure.value.offset == 0


def test_every_chunk_is_worked_exactly_once_by_several_workers() -> None:
    seen: list[tuple[int, int]] = []
    lock = threading.Lock()

    def work(worker: int, offset: int, _length: int) -> None:
        with lock:
            seen.append((worker, offset))

    run_workers(((i, 1) for i in range(1000)), work, 4)
    assert sorted(offset for _, offset in seen) == list(range(1000))
    assert {worker for worker, _ in seen} <= {0, 1, 2, 3}


@pytest.mark.parametrize("length", [1, 63, 64, 65, 4096, MIB + 3])
def test_constant_check_finds_one_wrong_byte_anywhere(length: int) -> None:
    buf = aligned_buffer(MIB + 4096)
    buf[:length] = b"\xff" * length
    assert compare.all_bytes(buf, length, 0xFF) and not compare.all_bytes(buf, length, 0)
    for wrong in {0, length // 2, length - 1, min(63, length - 1), min(64, length - 1)}:
        buf[wrong] = 0xFE
        assert not compare.all_bytes(buf, length, 0xFF)
        assert compare.differences(buf, length, 0xFF) == (wrong, 1)
        buf[wrong] = 0xFF


def test_buffer_comparison_counts_the_differences() -> None:
    a, b = aligned_buffer(MIB), aligned_buffer(MIB)
    data = os.urandom(MIB)
    a[:] = data
    b[:] = data
    assert compare.same(a, b, MIB)
    b[100] ^= 1
    b[MIB - 1] ^= 1
    assert not compare.same(a, b, MIB) and compare.same(a, b, 100)
    assert compare.differences(a, MIB, b) == (100, 2)


def _image(path, size: int):
    path.write_bytes(os.urandom(MIB) * (size // MIB))
    return str(path)


@pytest.mark.parametrize("pattern", ["zeros", "random"])
def test_several_workers_write_and_verify_every_byte(tmp_path, pattern: str) -> None:
    target = _image(tmp_path / "disk.img", SIZE)
    result = erase(target, level=Level.CLEAR, method=pattern, verify=VerifyMode.FULL)
    assert result.io_mode == "direct"  # several workers run on direct I/O only
    assert result.ok and result.bytes_written == SIZE
    assert result.verification is not None and result.verification.bytes_read == SIZE
    tampered = 11 * DEFAULT_CHUNK + 12345  # in a chunk a worker other than the first reads
    with open(target, "r+b") as f:
        f.seek(tampered)
        old = f.read(1)
        f.seek(tampered)
        f.write(bytes([old[0] ^ 0x5A]))
    check = verify_target(target, pattern=pattern, pattern_seed_hex=result.pattern_seed_hex)
    assert not check.passed and check.mismatches == 1 and check.first_mismatch_offset == tampered


def test_cancel_with_several_workers_fails_closed(tmp_path) -> None:
    target = _image(tmp_path / "disk.img", SIZE)
    cancel = threading.Event()
    result = erase(target, level=Level.CLEAR, method="zeros", cancel=cancel, progress=lambda _p: cancel.set())
    assert not result.ok and "cancelled" in (result.failure_reason or "")
    assert result.failure_offset is not None and 0 < result.failure_offset < SIZE
    assert result.bytes_written % DEFAULT_CHUNK == 0 and 0 < result.bytes_written < SIZE
