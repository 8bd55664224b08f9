"""SshCommandRunner against a real service-environment guest: QEMU with NVMe and SATA disks.

One guest boots per module (about 8-25 s under TCG, depending on load). Every test that needs a
disk state sets it up itself through the backing image on the host, and checks the outcome both
through the runner (what the service environment reads) and the backing image (ground truth).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from harness.firmware_recordings import STEPS, recorded_file, recorded_step
from harness.qemu_guest import MIB, NVME_SERIAL, ONE_GUEST_AT_A_TIME, RunningGuest, booted_guest, pattern_bytes

from hardware_drivers.remote_commands import (
    NOT_FOUND,
    TIMED_OUT,
    HostKeyMismatch,
    PinnedHostKey,
    RemoteAuthError,
    RemotePattern,
    RemoteReadError,
    SshCommandRunner,
)
from imaging import commands as imaging_commands
from imaging.result import CommandRecord

pytestmark = [pytest.mark.root, pytest.mark.slow, ONE_GUEST_AT_A_TIME]  # slow: boots the QEMU guest

SAMPLE = 64 * 1024


@pytest.fixture(scope="module")
def guest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGuest]:
    yield from booted_guest(tmp_path_factory.mktemp("qemu-guest"))


@pytest.fixture(scope="module")
def runner(guest: RunningGuest) -> Iterator[SshCommandRunner[CommandRecord]]:
    with SshCommandRunner(guest.ssh_target(), record_factory=CommandRecord) as r:
        yield r


def sample_offsets(size: int, seed: int, count: int = 6) -> list[int]:
    """First and last sample of the disk plus seeded random ones, all SAMPLE-aligned."""
    rng = random.Random(seed)
    slots = size // SAMPLE
    return sorted({0, (slots - 1) * SAMPLE, *(rng.randrange(1, slots - 1) * SAMPLE for _ in range(count))})


def test_runner_satisfies_the_imaging_command_seam(runner: SshCommandRunner[CommandRecord]) -> None:
    assert isinstance(runner, imaging_commands.CommandRunner)
    assert (TIMED_OUT, NOT_FOUND) == (imaging_commands.TIMED_OUT, imaging_commands.NOT_FOUND)
    record = runner.run(["sh", "-c", "echo out; echo err >&2; exit 3"], 10)
    assert isinstance(record, CommandRecord)
    assert (record.returncode, record.stdout, record.stderr) == (3, "out\n", "err\n")
    assert record.argv == ("sh", "-c", "echo out; echo err >&2; exit 3")
    assert record.started_at.endswith("Z") and record.ended_at >= record.started_at


def test_arguments_reach_the_remote_tool_verbatim(runner: SshCommandRunner[CommandRecord]) -> None:
    tricky = ["a b", "$HOME", "it's", "; reboot", "*", ""]
    record = runner.run(["printf", "[%s]\\n", *tricky], 10)
    assert record.stdout.splitlines() == [f"[{arg}]" for arg in tricky]


def test_missing_tool_is_127_and_locale_is_c(runner: SshCommandRunner[CommandRecord]) -> None:
    assert runner.run(["no-such-tool-here"], 10).returncode == NOT_FOUND
    assert runner.run(["sh", "-c", 'echo "$LC_ALL"'], 10).stdout == "C\n"


def test_timeout_kills_the_remote_command(runner: SshCommandRunner[CommandRecord]) -> None:
    began = time.monotonic()
    record = runner.run(["sleep", "31"], 1.0)
    assert record.returncode == TIMED_OUT
    assert record.stderr.endswith("timed out after 1s")
    assert time.monotonic() - began < 10
    # The remote `timeout` killed it: no sleep is left behind, and the connection is still usable.
    processes = runner.run(["ps", "-o", "args"], 10)
    assert processes.returncode == 0
    assert "sleep 31" not in processes.stdout.splitlines()


def test_nvme_id_ctrl_json_parses(runner: SshCommandRunner[CommandRecord]) -> None:
    record = runner.run(["nvme", "id-ctrl", "/dev/nvme0n1", "-o", "json"], 30)
    assert record.returncode == 0, record.stderr
    ctrl = json.loads(record.stdout)
    assert ctrl["sn"].strip() == NVME_SERIAL
    assert ctrl["mn"].strip() == "QEMU NVMe Ctrl"
    assert ctrl["oacs"] & 0x2  # Format NVM supported
    assert ctrl["sanicap"] == 0  # no Sanitize
    assert ctrl == json.loads(recorded_file(next(s for s in STEPS if s.name == "nvme-id-ctrl")))


def test_nvme_format_really_zero_fills(guest: RunningGuest, runner: SshCommandRunner[CommandRecord]) -> None:
    disk = guest.nvme
    offsets = sample_offsets(disk.size, seed=20240601)
    for offset in offsets:
        disk.restore_pattern(offset, SAMPLE)
        # Read through the guest first: proves the read-back sees the medium, not a stale cache.
        assert runner.read_range(disk.device, offset, SAMPLE) == pattern_bytes(offset, SAMPLE)

    record = runner.run(["nvme", "format", disk.device, "--ses=1", "--force"], 120)
    assert record.returncode == 0, record.stderr
    assert "Success formatting namespace:1" in record.stdout

    zeros = bytes(SAMPLE)
    for offset in offsets:
        assert runner.read_range(disk.device, offset, SAMPLE) == zeros, f"not zero at {offset}"
        assert disk.read_image(offset, SAMPLE) == zeros


@pytest.mark.parametrize(("sanact", "step"), [("2", "nvme-sanitize-block"), ("4", "nvme-sanitize-crypto")])
def test_nvme_sanitize_is_invalid_opcode(runner: SshCommandRunner[CommandRecord], sanact: str, step: str) -> None:
    record = runner.run(["nvme", "sanitize", "/dev/nvme0n1", f"--sanact={sanact}"], 30)
    assert record.returncode != 0
    assert "Invalid Command Opcode" in record.stderr
    assert record.stderr == recorded_file(next(s for s in STEPS if s.name == step))


def test_sata_security_erase_exits_0_but_erases_nothing(
    guest: RunningGuest, runner: SshCommandRunner[CommandRecord]
) -> None:
    disk = guest.sata
    offsets = sample_offsets(disk.size, seed=7)
    for offset in offsets:
        disk.restore_pattern(offset, SAMPLE)

    set_pass = runner.run(["hdparm", "--user-master", "u", "--security-set-pass", "p", disk.device], 60)
    erase = runner.run(["hdparm", "--user-master", "u", "--security-erase", "p", disk.device], 60)
    assert (set_pass.returncode, erase.returncode) == (0, 0)
    assert "SG_IO: bad/missing sense data" in erase.stderr  # the only sign the disk refused

    for offset in offsets:
        expected = pattern_bytes(offset, SAMPLE)
        assert runner.read_range(disk.device, offset, SAMPLE) == expected, f"changed at {offset}"
        assert disk.read_image(offset, SAMPLE) == expected


@pytest.mark.parametrize("step", STEPS, ids=lambda s: s.name)
def test_recorded_outputs_still_match_the_guest(runner: SshCommandRunner[CommandRecord], step) -> None:
    """The fixtures in tests/fixtures/firmware/qemu-* are what this guest prints, byte for byte."""
    record = runner.run(step.command(), 120)
    recorded = recorded_step(step.name)
    assert record.returncode == recorded["returncode"]
    assert record.stderr == recorded["stderr"]
    assert (record.stdout if step.stream == "stdout" else record.stderr) == recorded_file(step)
    if step.stream == "stderr":
        assert record.stdout == recorded["stdout"]


def test_write_pattern_overwrites_exactly_the_range(
    guest: RunningGuest, runner: SshCommandRunner[CommandRecord]
) -> None:
    disk = guest.sata
    start, length = 8 * MIB, 4 * MIB + 4096  # a whole-block body and a short tail
    disk.restore_pattern(start - SAMPLE, length + 2 * SAMPLE)

    report = runner.write_pattern(disk.device, offset=start, length=length, timeout=120)

    assert report.bytes_written == length
    assert [r.returncode for r in report.records] == [0, 0]
    assert all(isinstance(r, CommandRecord) for r in report.records)
    assert disk.read_image(start, length) == bytes(length)
    assert runner.read_range(disk.device, start, SAMPLE) == bytes(SAMPLE)
    # The bytes on either side are untouched.
    assert disk.read_image(start - SAMPLE, SAMPLE) == pattern_bytes(start - SAMPLE, SAMPLE)
    assert disk.read_image(start + length, SAMPLE) == pattern_bytes(start + length, SAMPLE)


def test_write_pattern_covers_the_whole_device(guest: RunningGuest, runner: SshCommandRunner[CommandRecord]) -> None:
    disk = guest.nvme
    disk.restore_pattern(0, disk.size)

    random_pass = runner.write_pattern(disk.device, pattern=RemotePattern.RANDOM, timeout=300)
    assert random_pass.bytes_written == disk.size
    image = disk.read_image(0, disk.size)
    assert image != bytes(disk.size) and image[:SAMPLE] != pattern_bytes(0, SAMPLE)

    zero_pass = runner.write_pattern(disk.device, timeout=300)
    assert zero_pass.bytes_written == disk.size
    assert disk.read_image(0, disk.size) == bytes(disk.size)


def test_read_range_refuses_short_and_misaligned_reads(
    guest: RunningGuest, runner: SshCommandRunner[CommandRecord]
) -> None:
    with pytest.raises(RemoteReadError, match="returned 4096 bytes"):
        runner.read_range(guest.sata.device, guest.sata.size - 4096, 8192)
    with pytest.raises(RemoteReadError, match="failed"):
        runner.read_range("/dev/no-such-disk", 0, 4096)
    with pytest.raises(ValueError, match="multiples of 512"):
        runner.read_range(guest.sata.device, 100, 4096)


def _openssh_public(key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def test_host_key_mismatch_is_refused(guest: RunningGuest) -> None:
    impostor = _openssh_public(ed25519.Ed25519PrivateKey.generate())
    runner = SshCommandRunner(guest.ssh_target(host_key=impostor))
    with pytest.raises(HostKeyMismatch, match=r"host key mismatch for 127\.0\.0\.1:") as caught:
        runner.run(["true"], 10)
    assert PinnedHostKey.parse(guest.host_key).fingerprint in str(caught.value)
    assert PinnedHostKey.parse(impostor).fingerprint in str(caught.value)


def test_host_key_of_another_type_is_refused(guest: RunningGuest) -> None:
    other_type = _openssh_public(ec.generate_private_key(ec.SECP256R1()))
    runner = SshCommandRunner(guest.ssh_target(host_key=other_type))
    with pytest.raises(HostKeyMismatch, match="offered no ecdsa-sha2-nistp256 host key"):
        runner.run(["true"], 10)


def test_unknown_client_key_is_refused(guest: RunningGuest, tmp_path) -> None:
    key_file = tmp_path / "stranger"
    key_file.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
    )
    target = guest.ssh_target()
    stranger = SshCommandRunner(type(target)(target.host, target.port, target.username, key_file, target.host_key))
    with pytest.raises(RemoteAuthError, match="refused key auth for root"):
        stranger.run(["true"], 10)
