"""Injected media faults: a loop device over a FUSE file that returns EIO at chosen sectors."""

from __future__ import annotations

from pathlib import Path

from harness.disks import MIB, loop_device, make_image
from harness.fuse_faults import faulty_image

from imaging.engine import erase
from imaging.result import Level, VerifyMode

SIZE = 64 * MIB
CHUNK = 8 * MIB


def _faulty_loop(tmp_path: Path, **faults):
    image = make_image(tmp_path / "backing.img", SIZE)
    return faulty_image(image, tmp_path / "mnt", **faults)


def test_eio_mid_write_fails_closed_at_the_failing_chunk(fuse_ready, tmp_path):
    # A 4 MiB bad range: the loop driver ignores a *short* write from its backing file, so the
    # range must cover whole loop requests for the EIO to reach the writer (on a real disk any
    # failed sector does). A small range is still caught, by verification (next test but one).
    bad_sector = 40960
    with _faulty_loop(tmp_path, write_eio=[f"{bad_sector}:{bad_sector + 8192}"]) as exposed:
        with loop_device(exposed) as dev:
            result = erase(dev, level=Level.CLEAR, method="zeros")
    assert not result.ok and result.level_achieved is None
    assert result.failure_reason == "I/O error during write"
    assert result.failure_offset is not None
    assert result.failure_offset <= bad_sector * 512 < result.failure_offset + CHUNK
    assert result.verification is None
    assert result.bytes_written == result.failure_offset  # every chunk before the failing one


def test_eio_mid_verify_fails_closed_at_the_failing_chunk(fuse_ready, tmp_path):
    bad_sector = 100000
    with _faulty_loop(tmp_path, read_eio=[f"{bad_sector}:{bad_sector + 1}"]) as exposed:
        with loop_device(exposed) as dev:
            result = erase(dev, level=Level.CLEAR, method="random", verify=VerifyMode.FULL)
    assert not result.ok
    assert result.bytes_written == SIZE  # the write pass itself succeeded
    assert result.failure_reason == "I/O error during read"
    assert result.failure_offset is not None
    assert result.failure_offset <= bad_sector * 512 < result.failure_offset + CHUNK


def test_write_lost_without_an_error_is_caught_by_verification(fuse_ready, tmp_path):
    bad_sector = 40001  # a few sectors inside one loop request: the write "succeeds" short
    with _faulty_loop(tmp_path, write_eio=[f"{bad_sector}:{bad_sector + 8}"]) as exposed:
        with loop_device(exposed) as dev:
            result = erase(dev, level=Level.CLEAR, method="zeros", verify=VerifyMode.FULL)
    assert not result.ok
    assert result.failure_offset is not None
    if result.failure_reason == "I/O error during write":
        assert result.failure_offset <= bad_sector * 512 < result.failure_offset + CHUNK
    else:
        assert (result.failure_reason or "").startswith("verification failed")
        assert result.failure_offset >= bad_sector * 512 - 128 * 1024


def test_a_medium_that_drops_writes_and_reads_zeros_is_not_certified_by_default(fuse_ready, tmp_path):
    """The default overwrite is a keyed random stream, so a lying medium fails its read-back."""
    with _faulty_loop(tmp_path, discard_writes=True) as exposed:
        with loop_device(exposed) as dev:
            asked_zeros = erase(dev, level=Level.CLEAR, method="zeros", verify=VerifyMode.FULL)
            default = erase(dev, level=Level.CLEAR)
    # The device really lies convincingly: a zeros overwrite cannot tell it from an erased disk.
    assert asked_zeros.ok and asked_zeros.pattern == "zeros"
    assert not default.ok and default.level_achieved is None
    assert (default.method, default.pattern) == ("overwrite-random", "random")
    assert default.bytes_written == SIZE  # every write was acknowledged
    assert default.verification is not None and default.verification.mismatches > 0
    assert (default.failure_reason or "").startswith("verification failed")
    assert default.failure_offset is not None
