"""Random markers written before a firmware erase (imaging/firmware_marker.py): where they go, and
that the remote script writes exactly those blocks, run for real by sh and dd on a regular file."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness.disks import MIB, PLANT, make_image

from imaging.commands import SubprocessRunner
from imaging.errors import EraseFailure
from imaging.firmware_marker import MARKER_COUNT, marker_offsets, write_remote_markers


def test_markers_are_spread_over_one_whole_region_and_block_aligned() -> None:
    offsets = marker_offsets([(0, 64 * MIB)], 4096)
    assert len(offsets) == MARKER_COUNT
    assert offsets == sorted(set(offsets)) and all(o % 4096 == 0 for o in offsets)
    assert offsets[0] == 0 and offsets[-1] == 15 * 4 * MIB  # evenly, one per 4 MiB


def test_markers_fall_inside_the_sampled_locations_only() -> None:
    regions = [(8192 * i * 10, 8192) for i in range(100)]  # 100 sampled locations of 2 blocks
    offsets = marker_offsets(regions, 4096)
    assert len(offsets) == MARKER_COUNT
    assert all(any(start <= o and o + 4096 <= start + length for start, length in regions) for o in offsets)
    assert len({o // (8192 * 10) for o in offsets}) == MARKER_COUNT  # in as many different locations


def test_fewer_blocks_than_markers_marks_each_block_once_and_unaligned_regions_none() -> None:
    assert marker_offsets([(0, 3 * 512)], 512) == [0, 512, 1024]
    assert marker_offsets([(100, 4096), (0, 100)], 512) == []
    assert marker_offsets([], 512) == []


def test_the_remote_script_writes_random_blocks_at_exactly_those_offsets(tmp_path: Path) -> None:
    disk = make_image(tmp_path / "remote.img", 4 * MIB)
    offsets = [0, 512 * 9, 3 * MIB]
    write_remote_markers(SubprocessRunner(), str(disk), offsets, 512)
    data = disk.read_bytes()
    assert len(data) == 4 * MIB  # conv=notrunc: a regular file keeps its size
    planted = PLANT * (512 // len(PLANT))
    changed = [off for off in range(0, len(data), 512) if data[off : off + 512] != planted]
    assert changed == offsets
    assert all(data[o : o + 512] != bytes(512) for o in offsets)


def test_a_refused_marker_write_fails_the_erase_with_its_offset(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir" / "disk"
    with pytest.raises(EraseFailure, match="refused a marker write at offset 1024"):
        write_remote_markers(SubprocessRunner(), str(missing), [1024], 512)
