"""Deploy's streaming parts: the staged pipeline (order with one or several producers, write and
hash side by side, failures, slot reuse) and the raw image read with O_DIRECT, in order or at
offsets from several threads (byte-exact, the page cache left alone, the unaligned tail through it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from harness.disks import MIB

from imaging.deploy import deploy_image
from imaging.deploy_pipeline import StagedPipeline
from imaging.deploy_source import ImageSource, ImageStreamError
from imaging.image_manifest import build_manifest
from imaging.patterns import aligned_buffer

SEGMENTS = [(i * 10, 10) for i in range(50)]


def _slots(n: int = 4) -> list[bytearray]:
    return [bytearray(16) for _ in range(n)]


def test_every_stage_sees_every_segment_in_order_with_the_producers_data():
    seen: dict[str, list[tuple[int, bytes]]] = {"write": [], "hash": []}

    def produce(slot: bytearray, offset: int, length: int) -> None:
        slot[:8] = offset.to_bytes(8, "big")

    def stage(name: str):
        def record(slot: bytearray, offset: int, length: int) -> None:
            seen[name].append((offset, bytes(slot[:8])))

        return record

    StagedPipeline(_slots(), produce, (stage("write"), stage("hash")), caller_stage=0).run(SEGMENTS)
    expected = [(offset, offset.to_bytes(8, "big")) for offset, _ in SEGMENTS]
    assert seen["write"] == expected
    assert seen["hash"] == expected


def test_a_late_stage_does_not_hold_up_the_one_before_it_beyond_the_free_slots():
    # The hasher is blocked until the writer has written three segments: the writer must get
    # there on the slots alone (one per stage plus a spare), not wait chunk by chunk for the hash.
    written = threading.Event()
    count = 0

    def write(slot: bytearray, offset: int, length: int) -> None:
        nonlocal count
        count += 1
        if count == 3:
            written.set()

    def hash_chunk(slot: bytearray, offset: int, length: int) -> None:
        assert written.wait(10), "the writer waited for the hasher"

    StagedPipeline(_slots(4), lambda *_: None, (write, hash_chunk), caller_stage=0).run(SEGMENTS[:6])
    assert count == 6


def _steps_failing_at_200(failing: str, calls: list[tuple[str, int]]):
    """Stage functions by name that note each segment in ``calls``; the one named ``failing``
    raises at segment 200 instead."""

    def step(name: str):
        def run(slot: bytearray, offset: int, length: int) -> None:
            if name == failing and offset == 200:
                raise OSError(f"{name} failed at {offset}")
            calls.append((name, offset))

        return run

    return step


@pytest.mark.parametrize("failing", ["produce", "write", "hash"])
def test_the_first_failure_of_any_stage_is_raised_in_the_caller_and_stops_the_rest(failing):
    calls: list[tuple[str, int]] = []
    step = _steps_failing_at_200(failing, calls)
    pipeline = StagedPipeline(_slots(), step("produce"), (step("write"), step("hash")), caller_stage=0)
    with pytest.raises(OSError, match=f"{failing} failed at 200"):
        pipeline.run(SEGMENTS)
    # The failing step did not finish that segment (the hasher may have, beside a failing write),
    # and the run stopped within a few slots of it.
    assert (failing, 200) not in calls
    assert not any(offset >= 200 + 5 * 10 for _, offset in calls)
    assert threading.active_count() == 1 or all(
        not t.name.startswith(("deploy-read", "deploy-stage")) for t in threading.enumerate()
    )


def test_too_few_slots_are_refused():
    with pytest.raises(ValueError, match="slot per producer"):
        StagedPipeline(_slots(2), lambda *_: None, (lambda *_: None, lambda *_: None), caller_stage=0, producers=2)


def test_write_and_hash_of_a_slot_run_side_by_side():
    # Both only read the slot: the hasher starts on a chunk while the writer is still writing it.
    hashing = threading.Event()

    def write(slot: bytearray, offset: int, length: int) -> None:
        assert hashing.wait(10), "the hasher waited for the writer"

    def hash_chunk(slot: bytearray, offset: int, length: int) -> None:
        hashing.set()

    StagedPipeline(_slots(), lambda *_: None, (write, hash_chunk), caller_stage=0).run(SEGMENTS[:3])


@pytest.mark.parametrize("producers", [2, 3])
def test_several_producers_hand_the_stages_every_segment_in_order(producers):
    # Producers finish out of order (the first of each pair is slow): the stages still see 0, 10, 20...
    seen: list[tuple[int, bytes]] = []
    lock = threading.Lock()

    def produce(slot: bytearray, offset: int, length: int) -> None:
        if (offset // 10) % producers == 0:
            threading.Event().wait(0.002)
        slot[:8] = offset.to_bytes(8, "big")

    def write(slot: bytearray, offset: int, length: int) -> None:
        with lock:
            seen.append((offset, bytes(slot[:8])))

    StagedPipeline(_slots(producers + 2), produce, (write, lambda *_: None), 0, producers).run(SEGMENTS)
    assert seen == [(offset, offset.to_bytes(8, "big")) for offset, _ in SEGMENTS]


@pytest.mark.parametrize("failing", ["produce", "write"])
def test_a_failure_with_several_producers_stops_them_all(failing):
    calls: list[tuple[str, int]] = []
    step = _steps_failing_at_200(failing, calls)
    pipeline = StagedPipeline(_slots(5), step("produce"), (step("write"), step("hash")), 0, producers=2)
    with pytest.raises(OSError, match=f"{failing} failed at 200"):
        pipeline.run(SEGMENTS)
    assert ("write", 200) not in calls
    assert not any(offset >= 200 + 6 * 10 for _, offset in calls)
    assert all(not t.name.startswith(("deploy-read", "deploy-stage")) for t in threading.enumerate())


def _cached_pages(path: Path) -> int:
    out = subprocess.run(
        ["fincore", "--bytes", "--noheadings", "-o", "PAGES", str(path)], capture_output=True, text=True
    )
    return int(out.stdout.split()[0])


def _uncached_image(tmp_path: Path, size: int) -> Path:
    image = tmp_path / "golden.img"
    image.write_bytes(os.urandom(size))
    fd = os.open(image, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return image


def test_raw_image_is_read_around_the_page_cache_except_its_unaligned_tail(tmp_path):
    if shutil.which("fincore") is None:
        pytest.skip("fincore (util-linux) not installed")
    size = 4 * MIB + 1000
    image = _uncached_image(tmp_path, size)
    if _cached_pages(image) != 0:
        pytest.skip("this filesystem keeps the image cached (tmpfs?): O_DIRECT does not apply")
    slot = aligned_buffer(8 * MIB)
    with ImageSource(str(image), compressed=False) as source:
        source.fill(slot, size)
        assert source.at_end()
    assert _cached_pages(image) <= 2  # only the tail's page (and the end probe) came through the cache
    assert slot[:size] == image.read_bytes()


def test_raw_image_read_at_offsets_from_several_threads_is_byte_exact(tmp_path):
    if shutil.which("fincore") is None:
        pytest.skip("fincore (util-linux) not installed")
    size = 4 * MIB + 1000
    image = _uncached_image(tmp_path, size)
    direct = _cached_pages(image) == 0
    parts = [(0, MIB), (MIB, MIB), (2 * MIB, MIB), (3 * MIB, MIB), (4 * MIB, 1000)]
    slots = [aligned_buffer(MIB) for _ in parts]
    with ImageSource(str(image), compressed=False) as source:
        threads = [
            threading.Thread(target=source.fill_at, args=(slot, offset, length))
            for slot, (offset, length) in zip(slots, parts, strict=True)
        ]
        for thread in reversed(threads):  # the last range first: reads are positional
            thread.start()
        for thread in threads:
            thread.join()
        assert source.at_end()
    if direct:
        assert _cached_pages(image) <= 2  # only the tail's page (and the end probe)
    assert b"".join(bytes(slot[:length]) for slot, (_, length) in zip(slots, parts, strict=True)) == image.read_bytes()


def test_raw_image_shorter_than_asked_is_a_truncation_at_its_offset(tmp_path):
    image = _uncached_image(tmp_path, 2 * MIB)
    with ImageSource(str(image), compressed=False) as source:
        with pytest.raises(ImageStreamError, match="truncated") as failure:
            source.fill_at(aligned_buffer(2 * MIB), MIB, 2 * MIB)
    assert failure.value.offset == 2 * MIB


def test_raw_image_deployed_from_a_page_cache_free_read_is_byte_exact(tmp_path):
    size = 3 * MIB + 4096 * 3 + 17
    image = _uncached_image(tmp_path, size)
    manifest = build_manifest(image, name="golden", version="1")
    target = tmp_path / "target.img"
    target.write_bytes(b"\xa5" * (4 * MIB))
    result = deploy_image(image, str(target), manifest=manifest, chunk=MIB)
    assert result.ok, result.failure_reason
    data = target.read_bytes()
    assert data[:size] == image.read_bytes()
    assert data[size:] == b"\xa5" * (4 * MIB - size)
