"""Firmware erase paths driven by recorded nvme-cli / hdparm outputs through the replay runner.

The "drive" is a regular file: scenario effects make the replayed firmware act on it (zero-fill,
scramble, grow), so the engine's read-back verification runs for real against it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from harness.disks import (
    FIXTURES,
    MIB,
    PLANT,
    assert_every_byte,
    assert_untouched_but_markers,
    fake_firmware_probe,
    make_image,
)

from imaging.commands import ReplayRunner
from imaging.engine import erase
from imaging.errors import PlanError
from imaging.result import Level, Technique, VerifyMode

SIZE = 8 * MIB


@pytest.fixture
def disk(tmp_path: Path) -> Path:
    return make_image(tmp_path / "drive.img", SIZE)


def replay(name: str, disk: Path) -> ReplayRunner:
    def zero_fill(_argv: tuple[str, ...]) -> None:
        with open(disk, "r+b") as f:
            f.write(bytes(os.path.getsize(disk)))

    def scramble(_argv: tuple[str, ...]) -> None:
        with open(disk, "r+b") as f:
            f.write(os.urandom(os.path.getsize(disk)))

    def grow(_argv: tuple[str, ...]) -> None:
        with open(disk, "r+b") as f:
            f.truncate(16384 * 512)

    return ReplayRunner(
        FIXTURES / f"{name}.json",
        device=str(disk),
        effects={"zero-fill": zero_fill, "scramble": scramble, "grow": grow},
    )


def erase_with(name: str, disk: Path, transport: str, media: str, **kwargs):
    runner = replay(name, disk)
    probe = fake_firmware_probe(disk, transport, media, runner)
    kwargs.setdefault("level", Level.PURGE)
    result = erase(probe, runner=runner, poll_interval=0.001, **kwargs)
    return result, runner


def argv_names(result) -> list[str]:
    return [" ".join(c.argv[:2]) for c in result.commands]


def test_nvme_sanitize_success_polls_to_completion_and_reads_back_zeros(disk):
    result, runner = erase_with("nvme-sanitize-crypto-success", disk, "nvme", "nvme")
    assert result.ok, result.failure_reason
    assert result.method == "nvme-sanitize-crypto"
    assert result.technique is Technique.CRYPTO_ERASE
    assert result.level_achieved is Level.PURGE
    assert result.verification is not None and result.verification.passed
    assert result.verification.expected_pattern == "zeros"
    assert result.verification.mode is VerifyMode.SAMPLE or SIZE // 4096 < 2000
    # polled: in progress twice, then completed
    assert sum(1 for c in runner.calls if c[1] == "sanitize-log") == 4
    assert "nvme sanitize" in argv_names(result)
    assert all(c.returncode == 0 for c in result.commands)
    assert_every_byte(str(disk), SIZE, "zeros")


def test_nvme_sanitize_vendor_pattern_is_verified_as_changed(disk):
    result, _ = erase_with("nvme-sanitize-crypto-vendor", disk, "nvme", "nvme", verify=VerifyMode.FULL)
    assert result.ok, result.failure_reason
    assert result.verification is not None
    assert result.verification.expected_pattern.startswith("vendor")
    assert result.verification.coverage == 1.0
    assert PLANT not in disk.read_bytes()


@pytest.mark.parametrize(
    ("scenario", "reason"),
    [
        ("nvme-sanitize-failed", "sanitize failed"),
        ("nvme-sanitize-aborted", "ABORT_REQ"),
        ("nvme-sanitize-never-ran", "did not run"),
    ],
)
def test_nvme_sanitize_failures_fail_closed(disk, scenario, reason):
    result, _ = erase_with(scenario, disk, "nvme", "nvme")
    assert not result.ok
    assert result.level_achieved is None
    assert reason in (result.failure_reason or "")
    assert_untouched_but_markers(disk, SIZE)  # nothing pretended to erase it


def test_a_sanitize_that_never_started_behind_a_stale_completed_log_is_not_certified(tmp_path):
    # The drive reads as zeros where its cells still hold data, and its log says "completed" from an
    # earlier sanitize: status and a zeros read-back agreed, and a Purge was certified for nothing.
    # The random markers written first survive the no-op, so the read-back fails.
    disk = tmp_path / "deallocated.img"
    disk.write_bytes(bytes(SIZE))
    result, runner = erase_with("nvme-sanitize-stale-completed", disk, "nvme", "nvme")
    assert not result.ok and result.level_achieved is None
    assert "verification failed" in (result.failure_reason or "")
    assert result.verification is not None and result.verification.mismatches > 0
    assert any(n.startswith("wrote random markers to 16 block(s)") for n in result.notes)
    assert ("nvme", "sanitize", str(disk), "--sanact=4") in runner.calls


def test_markers_are_gone_after_a_real_sanitize_and_it_still_certifies(tmp_path):
    disk = tmp_path / "deallocated.img"
    disk.write_bytes(bytes(SIZE))
    result, _ = erase_with("nvme-sanitize-crypto-success", disk, "nvme", "nvme", verify=VerifyMode.FULL)
    assert result.ok, result.failure_reason
    assert_every_byte(str(disk), SIZE, "zeros")


def test_nvme_sanitize_in_progress_is_a_plan_error_before_anything_runs(disk):
    runner = replay("nvme-sanitize-in-progress", disk)
    probe = fake_firmware_probe(disk, "nvme", "nvme", runner)
    with pytest.raises(PlanError, match="already in progress"):
        erase(probe, level=Level.CLEAR, runner=runner)
    assert not any(c[1] in ("sanitize", "format") for c in runner.calls)


def test_nvme_format_crypto_chosen_when_sanitize_is_missing(disk):
    # The recorded controller's FNA (0x4) does not apply a secure erase to every namespace: Clear
    # per IEEE 2883, so a Purge cannot be planned with it, and a Clear runs it.
    with pytest.raises(PlanError, match="nvme-format-crypto: achieves clear only"):
        erase_with("nvme-format-crypto-success", disk, "nvme", "nvme")
    result, runner = erase_with("nvme-format-crypto-success", disk, "nvme", "nvme", level=Level.CLEAR)
    assert result.ok, result.failure_reason
    assert result.method == "nvme-format-crypto" and result.level_achieved is Level.CLEAR
    assert any("skipped nvme-sanitize-crypto: unsupported here" in n for n in result.notes)
    assert ("nvme", "format", str(disk), "--ses=2", "--force", "--timeout=14400000") in runner.calls
    assert_every_byte(str(disk), SIZE, "zeros")


def test_nvme_format_rejected(disk):
    result, _ = erase_with("nvme-format-rejected", disk, "nvme", "nvme", method="nvme-format", level=Level.CLEAR)
    assert not result.ok
    assert "INVALID_FORMAT" in (result.failure_reason or "")


def test_nvme_format_claiming_success_without_erasing_is_caught_by_read_back(disk):
    result, _ = erase_with("nvme-format-exit0-no-erase", disk, "nvme", "nvme", method="nvme-format", level=Level.CLEAR)
    assert not result.ok
    assert result.verification is not None and result.verification.mismatches > 0
    assert result.failure_offset == 0
    assert "verification failed" in (result.failure_reason or "")


def test_nvme_without_erase_support_cannot_purge_but_clears_by_overwrite(disk):
    runner = replay("nvme-unsupported", disk)
    probe = fake_firmware_probe(disk, "nvme", "nvme", runner)
    with pytest.raises(PlanError) as err:
        erase(probe, level=Level.PURGE, runner=runner)
    assert "unsupported here: controller SANICAP 0x0" in str(err.value)
    assert "overwrite-random: achieves clear only" in str(err.value)
    result = erase(probe, level=Level.CLEAR, runner=runner)
    assert result.ok and result.method == "overwrite-random"
    assert result.level_achieved is Level.CLEAR
    assert any("flash" in r for r in result.residual_risk)
    assert_every_byte(str(disk), SIZE, "random", result.pattern_seed_hex)


def test_ata_secure_erase_success_uses_one_temporary_password(disk):
    result, runner = erase_with("ata-secure-erase-success", disk, "sata", "hdd")
    assert result.ok, result.failure_reason
    assert result.method == "ata-secure-erase-enhanced"
    assert result.level_achieved is Level.PURGE
    set_pass = next(c for c in runner.calls if "--security-set-pass" in c)
    erase = next(c for c in runner.calls if "--security-erase-enhanced" in c)
    assert set_pass[4] == erase[4]
    assert not any("--security-disable" in c for c in runner.calls)
    assert_every_byte(str(disk), SIZE, "zeros")


def failed_ata_secure_erase(name: str, disk: Path, reason: str):
    """Replays an ATA secure erase that must fail with ``reason``; returns the temporary password too."""
    result, runner = erase_with(name, disk, "sata", "hdd")
    assert not result.ok
    assert reason in (result.failure_reason or "")
    password = next(c for c in runner.calls if "--security-set-pass" in c)[4]
    return result, runner, password


def test_ata_exit_zero_but_rejected_erase_fails_and_removes_password(disk):
    reason = "SG_IO: bad/missing sense data"
    result, runner, password = failed_ata_secure_erase("ata-secure-erase-rejected-exit0", disk, reason)
    assert any(password in r and "removed" in r for r in result.residual_risk)
    assert any("--security-disable" in c for c in runner.calls)
    assert result.verification is None


def test_ata_interrupted_erase_records_the_password_left_on_the_drive(disk):
    result, _, password = failed_ata_secure_erase("ata-secure-erase-interrupted", disk, "Input/output error")
    assert any(password in r and "FAILED" in r for r in result.residual_risk)


def test_ata_set_password_silently_rejected(disk):
    result, runner = erase_with("ata-set-pass-rejected", disk, "sata", "hdd")
    assert not result.ok
    assert "SECURITY SET PASSWORD" in (result.failure_reason or "")
    assert not any("--security-erase-enhanced" in c for c in runner.calls)


def test_ata_frozen_drive_is_refused_with_the_reason(disk):
    runner = replay("ata-frozen", disk)
    probe = fake_firmware_probe(disk, "sata", "sata-ssd", runner)
    assert probe.ata is not None and probe.ata.security is not None and probe.ata.security.frozen
    with pytest.raises(PlanError, match="security is frozen"):
        erase(probe, level=Level.CLEAR, method="ata-secure-erase", runner=runner)
    with pytest.raises(PlanError, match="SANITIZE feature set"):
        erase(probe, level=Level.PURGE, runner=runner)


def test_ata_sanitize_crypto_scramble_success(disk):
    result, runner = erase_with("ata-sanitize-crypto-success", disk, "sata", "sata-ssd")
    assert result.ok, result.failure_reason
    assert result.method == "ata-sanitize-crypto-scramble"
    assert result.technique is Technique.CRYPTO_ERASE
    assert sum(1 for c in runner.calls if "--sanitize-status" in c) == 2
    assert PLANT not in disk.read_bytes()


def test_ata_sanitize_failed(disk):
    result, _ = erase_with("ata-sanitize-failed", disk, "sata", "sata-ssd")
    assert not result.ok
    assert "sanitize failed" in (result.failure_reason or "")


def test_ata_unsupported_explicit_method_is_a_plan_error(disk):
    runner = replay("ata-unsupported", disk)
    probe = fake_firmware_probe(disk, "sata", "hdd", runner)
    with pytest.raises(PlanError, match="unsupported here: drive lacks the SANITIZE feature set"):
        erase(probe, level=Level.PURGE, method="ata-sanitize", runner=runner)


def test_hpa_is_restored_before_overwrite_and_hidden_sectors_are_erased(tmp_path):
    disk = make_image(tmp_path / "drive.img", 12288 * 512)
    with open(disk, "r+b") as f:  # what the HPA hides: planted data beyond the visible end
        f.seek(12288 * 512)
        f.write(PLANT * 256)
        f.truncate(12288 * 512)
    result, _runner = erase_with("ata-hpa-restore", disk, "sata", "hdd", level=Level.CLEAR)
    assert result.ok, result.failure_reason
    assert result.hidden_areas.hpa_present_before is True
    assert result.hidden_areas.hpa_present_after is False
    assert result.media.size_bytes == 16384 * 512
    assert result.bytes_written == 16384 * 512
    assert_every_byte(str(disk), 16384 * 512, "random", result.pattern_seed_hex)


def test_hpa_that_cannot_be_removed_refuses_certification(tmp_path):
    disk = make_image(tmp_path / "drive.img", 12288 * 512)
    result, _ = erase_with("ata-hpa-refused", disk, "sata", "hdd", level=Level.CLEAR)
    assert not result.ok
    assert "hidden sectors not erased" in (result.failure_reason or "")
    assert result.hidden_areas.hpa_present_after is True
