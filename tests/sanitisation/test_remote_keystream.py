"""The remote overwrite writes the keyed random pattern, and its read-back tells it from zeros.

A real sshd (tests/harness/sshd.py) plays the service environment; the "disk" is a file in its
root, written by the target's own ``openssl`` and ``dd`` with O_DIRECT as a block device would be.
The bytes must be exactly the AES-256-CTR stream ``imaging.patterns`` makes from the recorded key,
so a medium that drops writes and reads back zeros fails the verification a zeros overwrite passes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.sshd import SshdTarget, one_sshd_target

from hardware_drivers.remote_commands import PinnedHostKey, RemotePattern, SshCommandRunner, SshTarget
from imaging.patterns import Pattern, make_pattern
from imaging.readback import Expected
from imaging.remote_verify import verify_remote
from imaging.result import CommandRecord, VerificationResult, VerifyMode

SIZE = 3 << 20  # three runs of 1 MiB: the counter block must carry on across runs


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdTarget]:
    yield from one_sshd_target(tmp_path_factory.mktemp("keystream"), prefix="ks")


@pytest.fixture
def runner(target: SshdTarget) -> Iterator[SshCommandRunner[CommandRecord]]:
    ssh = SshTarget("127.0.0.1", target.port, "root", target.client_key, PinnedHostKey.parse(target.host_key_pub))
    with SshCommandRunner(ssh, record_factory=CommandRecord) as r:
        yield r


def _verify_random(
    runner: SshCommandRunner[CommandRecord], disk: Path, pattern: Pattern, mode: VerifyMode, *, seed: bytes
) -> VerificationResult:
    """The remote read-back of the whole file ``disk`` against the keyed random ``pattern``."""
    return verify_remote(
        runner, str(disk), size=SIZE, block=512, expected=Expected("random", pattern), mode=mode, seed=seed
    )


def test_remote_random_overwrite_is_the_recorded_keystream_and_verifies(target: SshdTarget, runner) -> None:
    disk = target.root / "disk.img"
    disk.write_bytes(b"\xa5" * SIZE)
    key = os.urandom(32)

    report = runner.write_pattern(str(disk), pattern=RemotePattern.RANDOM, length=SIZE, key=key, block_size=1 << 20)

    assert report.bytes_written == SIZE
    assert all(r.argv[:2] == ("sh", "-c") and "-aes-256-ctr" in r.argv[2] for r in report.records)
    pattern = make_pattern("random", key)
    want = bytearray(SIZE)
    pattern.fill(want, 0, SIZE, bytes(SIZE))
    assert disk.read_bytes() == bytes(want)  # every byte regenerated here from the key alone
    check = _verify_random(runner, disk, pattern, VerifyMode.FULL, seed=key[:16])
    assert check.passed and check.mismatches == 0 and check.coverage == 1.0


def test_zeros_on_the_medium_fail_a_random_overwrites_verification(target: SshdTarget, runner) -> None:
    """A medium that acknowledged the keystream but kept (or returns) zeros is caught."""
    disk = target.root / "dropping.img"
    disk.write_bytes(bytes(SIZE))
    pattern = make_pattern("random", os.urandom(32))
    check = _verify_random(runner, disk, pattern, VerifyMode.SAMPLE, seed=b"s" * 16)
    assert not check.passed and check.mismatches > 0
