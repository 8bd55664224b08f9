"""The erase commands as the real tools take them (VARIANTS.md, "Commands checked against the tools").

Regressions found by reading nvme-cli 1.x / 2.x and hdparm 9.65 sources against our argv: the
Format NVM ioctl timeout nvme-cli sets itself, nvme-cli 1.x status wording, an error printed with
exit 0, the drive's own sanitize estimate, and hdparm's own security-erase wait.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import pytest
from harness.disks import MIB, assert_every_byte, assert_untouched_but_markers, fake_firmware_probe, make_image
from test_firmware_replay import erase_with, replay

from imaging.ata_info import parse_identify
from imaging.commands import CommandRunner
from imaging.errors import EraseFailure, FirmwareRejected
from imaging.methods import AtaSecureErase, FirmwareContext, NvmeFormat, NvmeSanitize
from imaging.methods.ata_secure_erase import HDPARM_MARGIN, capacity_estimate
from imaging.methods.nvme_sanitize import refused_outright
from imaging.nvme_info import parse_sanitize_log
from imaging.probe import Probe
from imaging.result import CommandRecord, Level

SIZE = 8 * MIB
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "firmware"


@pytest.fixture
def disk(tmp_path: Path) -> Path:
    return make_image(tmp_path / "drive.img", SIZE)


class Timeouts:
    """Wraps a runner and keeps the timeout each command was given."""

    def __init__(self, inner: CommandRunner) -> None:
        self.inner = inner
        self.given: list[tuple[tuple[str, ...], float]] = []

    def run(self, argv: Sequence[str], timeout: float) -> CommandRecord:
        self.given.append((tuple(argv), timeout))
        return self.inner.run(argv, timeout)


def test_nvme_format_tells_nvme_cli_our_timeout_and_outlives_it(disk: Path) -> None:
    # nvme-cli's Format NVM ioctl timeout defaults to 600000 ms (nvme.c format(), 1.x - 2.16):
    # a longer erase was aborted by the kernel however long the process was allowed to run.
    inner = replay("nvme-format-crypto-success", disk)
    probe = fake_firmware_probe(disk, "nvme", "nvme", inner)
    runner = Timeouts(inner)
    NvmeFormat(2).execute(probe, FirmwareContext(runner, poll_interval=0.001))
    [(argv, timeout)] = [(a, t) for a, t in runner.given if a[1] == "format"]
    assert argv == ("nvme", "format", str(disk), "--ses=2", "--force", "--timeout=14400000")
    assert timeout > 14400000 / 1000


def test_nvme_format_stopped_by_the_tools_own_timeout_fails_closed(disk: Path) -> None:
    result, _ = erase_with("nvme-format-tool-timeout", disk, "nvme", "nvme", method="nvme-format", level=Level.CLEAR)
    assert not result.ok and result.level_achieved is None
    assert "Interrupted system call" in (result.failure_reason or "")
    assert_untouched_but_markers(disk, SIZE)


@pytest.mark.parametrize(
    "stderr",
    [
        "NVMe status: Invalid Command Opcode: A reserved coded value or an unsupported value in the command "
        "opcode field(0x4001)\n",  # nvme-cli 2.x / libnvme
        "NVMe status: INVALID_OPCODE: The associated command opcode field is not valid(0x4001)\n",  # 1.10-1.16
        "NVMe status: INVALID_FIELD: A reserved coded value or an unsupported value in a defined field(0x4002)\n",
        "NVME Admin command error:INVALID_OPCODE(2001)\n",  # nvme-cli <= 1.6
    ],
)
def test_not_executed_status_is_recognised_in_every_nvme_cli_wording(stderr: str) -> None:
    assert refused_outright(CommandRecord(("nvme", "sanitize"), 22, "", stderr, "", ""))
    assert not refused_outright(CommandRecord(("nvme", "sanitize"), 0, "", "", "", ""))
    aborted = "NVMe status: ABORT_REQ: The command was aborted due to a Command Abort request(0x7)\n"
    assert not refused_outright(CommandRecord(("nvme", "sanitize"), 5, "", aborted, "", ""))


def test_sanitize_refused_in_nvme_cli_1x_wording_is_a_rejection_not_an_unknown_outcome(disk: Path) -> None:
    # FirmwareRejected (nothing started) lets the remote erase fall back to the next method; before,
    # nvme-cli 1.x wording made it an EraseFailure and the erase stopped there.
    runner = replay("nvme-sanitize-refused-v1", disk)
    probe = fake_firmware_probe(disk, "nvme", "nvme", runner)
    ctx = FirmwareContext(runner, poll_interval=0.001)
    with pytest.raises(FirmwareRejected, match="INVALID_OPCODE"):
        NvmeSanitize("crypto").execute(probe, ctx)
    with pytest.raises(FirmwareRejected, match="INVALID_FIELD"):
        NvmeSanitize("block").execute(probe, ctx)
    assert NvmeFormat(2).execute(probe, ctx) == ("nvme format --ses=2: success reported",)
    assert [c[-1] for c in runner.calls if c[1] == "sanitize"] == ["--sanact=4", "--sanact=2"]
    assert_every_byte(str(disk), SIZE, "zeros")


def test_sanitize_exit_zero_with_an_nvme_status_is_a_failure(disk: Path) -> None:
    # The log still shows an earlier sanitize as completed: polling it would have "succeeded".
    result, runner = erase_with("nvme-sanitize-exit0-error", disk, "nvme", "nvme")
    assert not result.ok and result.level_achieved is None
    assert "exited 0 but reported an error" in (result.failure_reason or "")
    assert "Sanitize In Progress" in (result.failure_reason or "")
    calls = [c[1] for c in runner.calls]
    assert "sanitize-log" not in calls[calls.index("sanitize") :]
    assert_untouched_but_markers(disk, SIZE)


def test_sanitize_log_estimates_are_read() -> None:
    log = parse_sanitize_log((FIXTURES / "nvme" / "sanitize-log-in-progress-estimate.json").read_text())
    assert (log.crypto_erase_seconds, log.block_erase_seconds) == (7200, 600)
    plain = parse_sanitize_log((FIXTURES / "nvme" / "sanitize-log-in-progress.json").read_text())
    assert plain.crypto_erase_seconds == 0xFFFFFFFF  # "no time period reported"


def test_sanitize_polling_waits_at_least_the_drives_own_estimate(disk: Path) -> None:
    runner = replay("nvme-sanitize-crypto-estimate", disk)
    probe = fake_firmware_probe(disk, "nvme", "nvme", runner)
    ctx = FirmwareContext(runner, poll_interval=0.001, poll_timeout=0.0)
    notes = NvmeSanitize("crypto").execute(probe, ctx)
    assert notes == ("sanitize-log: completed",)
    # Without an estimate the same zero poll timeout gives up at the first in-progress poll.
    runner = replay("nvme-sanitize-crypto-success", disk)
    probe = fake_firmware_probe(disk, "nvme", "nvme", runner)
    with pytest.raises(EraseFailure, match="still in progress"):
        NvmeSanitize("crypto").execute(probe, FirmwareContext(runner, poll_interval=0.001, poll_timeout=0.0))


def _sata(disk: Path, size: int) -> Probe:
    ata = parse_identify((FIXTURES / "hdparm" / "identify-hdd-security.txt").read_text())
    probe = fake_firmware_probe(disk, "sata", "hdd", replay("ata-secure-erase-success", disk))
    return dataclasses.replace(probe, ata=ata, size_bytes=size)


def test_security_erase_waits_longer_than_hdparm_itself(disk: Path) -> None:
    # The fixture drive estimates 104 min; hdparm waits max(104 + 60 min, 1 s per 30 MiB + 30 min).
    small = _sata(disk, 64 * MIB)
    assert AtaSecureErase(enhanced=True)._timeout(small) >= (104 + 60) * 60 + HDPARM_MARGIN
    big = _sata(disk, 4 * 10**12)  # 4 TB: hdparm's capacity estimate (~37 h) beats the drive's
    assert capacity_estimate(big) > 2 * 104 * 60
    assert AtaSecureErase(enhanced=False)._timeout(big) >= capacity_estimate(big) + HDPARM_MARGIN
