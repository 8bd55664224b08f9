"""Real-world output variants of hdparm and nvme-cli (see tests/fixtures/firmware/VARIANTS.md).

Each fixture is our own text reproducing one format feature seen in outputs from real drives or
other tool versions; the assertions are about what the parser read and what the engine did.
"""

from __future__ import annotations

import dataclasses

import pytest
from harness.disks import FIXTURES, PLANT, assert_every_byte, make_image
from test_firmware_replay import erase_with
from test_plan import probe

from imaging.ata_info import AtaParseError, AtaSanitizeState, parse_hpa, parse_identify, parse_sanitize_status
from imaging.methods.ata_sanitize import AtaSanitize
from imaging.methods.ata_secure_erase import AtaSecureErase
from imaging.nvme_info import NvmeParseError, SanitizeState, parse_id_ctrl, parse_sanitize_log
from imaging.probe import Probe
from imaging.result import Level

NVME = FIXTURES / "nvme"
HDPARM = FIXTURES / "hdparm"


def _text(name: str) -> str:
    return (HDPARM / name).read_text()


def test_accessible_max_address_wording_is_read_as_a_hidden_area():
    enabled = parse_hpa(_text("ama-small-enabled.txt"))
    assert enabled.enabled and enabled.hidden_sectors == 4096 and enabled.native_sectors == 16384
    disabled = parse_hpa(_text("ama-small-disabled.txt"))
    assert not disabled.enabled and disabled.hidden_sectors == 0


@pytest.mark.parametrize(
    "text",
    [
        "hpa-invalid.txt",
        " max sectors   = 0/1, HPA is enabled\n",
        " max sectors   = 2048/1024, HPA is disabled\n",
    ],
)
def test_hpa_line_hdparm_calls_invalid_or_implausible_is_refused(text: str):
    with pytest.raises(AtaParseError, match="HPA state unknown"):
        parse_hpa(_text(text) if text.endswith(".txt") else text)


def test_accessible_max_address_is_restored_before_overwrite(tmp_path):
    disk = make_image(tmp_path / "drive.img", 12288 * 512)
    with open(disk, "r+b") as f:  # what the hidden area holds: planted data beyond the visible end
        f.seek(12288 * 512)
        f.write(PLANT * 256)
        f.truncate(12288 * 512)
    result, runner = erase_with("ata-ama-restore", disk, "sata", "hdd", level=Level.CLEAR)
    assert result.ok, result.failure_reason
    assert ("hdparm", "--yes-i-know-what-i-am-doing", "-N", "p16384", str(disk)) in runner.calls
    assert result.hidden_areas.hpa_present_before is True and result.hidden_areas.hpa_present_after is False
    assert result.bytes_written == 16384 * 512
    assert_every_byte(str(disk), 16384 * 512, "random", result.pattern_seed_hex)


def test_unreadable_hpa_state_on_a_drive_with_hpa_refuses_certification(tmp_path):
    disk = make_image(tmp_path / "drive.img", 16384 * 512)
    result, _ = erase_with("ata-hpa-invalid", disk, "sata", "hdd", level=Level.CLEAR)
    assert not result.ok
    assert "hidden sectors not erased" in (result.failure_reason or "")
    assert result.hidden_areas.hpa_present_before is None


def _sata(identify: str) -> Probe:
    return dataclasses.replace(probe(), ata=parse_identify(_text(identify)))


def test_erase_time_floor_is_a_lower_bound_and_widens_the_timeout():
    probe = _sata("identify-hdd-erase-time-floor.txt")
    sec = probe.ata.security if probe.ata else None
    assert sec is not None and sec.erase_time_lower_bound and sec.enhanced_erase_minutes == 508
    exact = _sata("identify-hdd-security.txt")
    assert exact.ata is not None and exact.ata.security is not None
    assert not exact.ata.security.erase_time_lower_bound
    method = AtaSecureErase(enhanced=True)
    assert method.supports(probe).level is Level.PURGE
    assert method._timeout(probe) > 2 * 60.0 * 508


def test_unsupported_security_marked_with_question_mark_is_not_usable():
    probe = _sata("identify-hdd-security-unsupported-mark.txt")
    assert probe.ata is not None and probe.ata.security is not None
    assert not probe.ata.security.supported and not probe.ata.security.enhanced_erase_supported
    assert not AtaSecureErase(enhanced=False).supports(probe).ok


def test_sanitize_overwrite_and_antifreeze_lines():
    ssd = parse_identify(_text("identify-ssd-sanitize-overwrite.txt"))
    assert ssd.sanitize_supported and ssd.sanitize_overwrite
    assert ssd.sanitize_crypto_scramble and ssd.sanitize_block_erase
    assert ssd.security is not None and not ssd.security.frozen


@pytest.mark.parametrize(
    ("name", "state"),
    [
        ("sanitize-status-done-antifreeze.txt", AtaSanitizeState.IDLE_OK),
        ("sanitize-status-in-progress-after-earlier-success.txt", AtaSanitizeState.IN_PROGRESS),
        ("sanitize-status-failed-abort.txt", AtaSanitizeState.FAILED),
        ("sanitize-status-unsupported.txt", AtaSanitizeState.FAILED),
    ],
)
def test_hdparm_sanitize_status_variants(name: str, state: AtaSanitizeState):
    assert parse_sanitize_status(_text(name)) is state


def test_security_frozen_drive_is_not_ready_for_a_firmware_erase():
    probe = _sata("identify-ssd-frozen.txt")
    assert not AtaSecureErase(enhanced=True).supports(probe).ok
    assert not AtaSanitize("crypto").supports(probe).ok


def test_id_ctrl_signed_int32_sanicap_is_read_as_unsigned():
    ctrl = parse_id_ctrl((NVME / "id-ctrl-sanicap-signed-int32.json").read_text())
    assert ctrl.sanicap == 0xA0000003
    assert ctrl.sanitize_crypto and ctrl.sanitize_block and not ctrl.sanitize_overwrite
    with pytest.raises(NvmeParseError, match="16-bit"):
        parse_id_ctrl('{"oacs": 70000, "fna": 0, "sanicap": 0}')


@pytest.mark.parametrize(
    ("name", "state", "progress"),
    [
        ("sanitize-log-v2.16-in-progress.json", SanitizeState.IN_PROGRESS, 655),
        ("sanitize-log-v2.16-failed.json", SanitizeState.FAILED, 65535),
        ("sanitize-log-libnvme-zeroed.json", SanitizeState.NEVER, 0),
    ],
)
def test_sanitize_log_variants(name: str, state: SanitizeState, progress: int):
    log = parse_sanitize_log((NVME / name).read_text())
    assert log.state is state and log.progress == progress
    assert not log.state.succeeded


def test_json_behind_a_warning_line_fails_closed():
    text = "Failed to open /dev/nvme9\n" + (NVME / "sanitize-log-completed.json").read_text()
    with pytest.raises(NvmeParseError, match="not JSON"):
        parse_sanitize_log(text)
