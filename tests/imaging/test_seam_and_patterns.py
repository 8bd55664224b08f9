"""The command seam, the pattern generator and the probe on plain targets."""

from __future__ import annotations

import mmap
import os

import pytest
from harness.disks import FIXTURES, MIB, expected_bytes, loop_device, make_image
from harness.requirements import require_root, require_tool

from imaging.commands import NOT_FOUND, TIMED_OUT, ReplayRunner, SubprocessRunner
from imaging.errors import ProbeError, UnexpectedCommand
from imaging.patterns import aligned_buffer, make_pattern
from imaging.probe import probe_target


def test_subprocess_runner_records_status_timeouts_and_missing_tools():
    runner = SubprocessRunner()
    ok = runner.run(["sh", "-c", "echo out; echo err >&2; exit 3"], timeout=10)
    assert ok.returncode == 3 and ok.stdout == "out\n" and ok.stderr == "err\n"
    assert ok.started_at.endswith("Z") and ok.started_at <= ok.ended_at
    slow = runner.run(["sleep", "5"], timeout=0.2)
    assert slow.returncode == TIMED_OUT and "timed out" in slow.stderr
    assert runner.run(["no-such-tool-here"], timeout=1).returncode == NOT_FOUND


def test_replay_runner_serves_in_order_repeats_last_and_rejects_unknown(tmp_path):
    runner = ReplayRunner(FIXTURES / "nvme-sanitize-crypto-success.json", device="/dev/nvme9n1")
    argv = ["nvme", "sanitize-log", "/dev/nvme9n1", "-o", "json"]
    states = [runner.run(argv, 1).stdout.count("(2)") for _ in range(5)]
    assert states == [0, 1, 1, 0, 0]  # never, in progress x2, completed, completed (repeats)
    with pytest.raises(UnexpectedCommand):
        runner.run(["nvme", "format", "/dev/nvme9n1"], 1)
    with pytest.raises(UnexpectedCommand):
        runner.run(["nvme", "sanitize-log", "/dev/other", "-o", "json"], 1)


def test_replay_runner_substitutes_captured_arguments():
    runner = ReplayRunner(FIXTURES / "ata-secure-erase-success.json", device="/dev/sdz")
    record = runner.run(["hdparm", "--user-master", "u", "--security-set-pass", "s3cret", "/dev/sdz"], 1)
    assert 'password="s3cret"' in record.stdout and "/dev/sdz:" in record.stdout


@pytest.mark.parametrize("offset", [0, 16, 4096, 8 * MIB + 48])
def test_random_pattern_regenerates_any_offset(offset):
    pattern = make_pattern("random")
    zeros = bytes(2 * MIB)
    buf = aligned_buffer(MIB)
    pattern.fill(buf, offset, MIB - 5, zeros)
    want = expected_bytes("random", pattern.seed_hex, offset, MIB)
    assert buf[: MIB - 5] == want[: MIB - 5].tobytes()


def test_constant_patterns_and_alignment():
    zeros = bytes(4096)
    for name, byte in (("zeros", 0), ("ones", 0xFF)):
        buf = aligned_buffer(4096)
        make_pattern(name).fill(buf, 0, 4096, zeros)
        assert buf[:] == bytes([byte]) * 4096
    assert isinstance(aligned_buffer(4096), mmap.mmap)
    with pytest.raises(ValueError):
        make_pattern("random").fill(aligned_buffer(4096), 8, 16, zeros)
    with pytest.raises(ValueError):
        make_pattern("dod-5220")


def test_probe_of_a_file_and_a_missing_path(tmp_path):
    path = make_image(tmp_path / "f.img", MIB + 7)
    p = probe_target(str(path))
    assert (p.kind, p.media_type, p.size_bytes, p.logical_sector_size) == ("file", "file", MIB + 7, 512)
    assert not p.read_only and p.usage.in_use_reason is None and not p.usage.mountpoints
    with pytest.raises(ProbeError):
        probe_target(str(tmp_path / "missing"))
    with pytest.raises(ProbeError, match="neither"):
        probe_target(str(tmp_path))


def test_probe_of_a_loop_device(tmp_path):
    require_root()
    require_tool("losetup")
    image = make_image(tmp_path / "l.img", 16 * MIB)
    with loop_device(image, "--sector-size", "4096") as dev:
        p = probe_target(dev)
        assert (p.kind, p.transport, p.media_type) == ("block", "loop", "loop")
        assert p.size_bytes == 16 * MIB and p.logical_sector_size == 4096
        assert p.name == os.path.basename(dev) and p.rdev == os.stat(dev).st_rdev
        assert p.identity().size_bytes == 16 * MIB
