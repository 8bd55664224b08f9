"""Parsers of nvme-cli 2.x JSON and hdparm 9.65 text, on recorded outputs."""

from __future__ import annotations

import pytest
from harness.disks import FIXTURES

from imaging.ata_info import (
    AtaParseError,
    AtaSanitizeState,
    parse_hpa,
    parse_identify,
    parse_sanitize_status,
    rejection_in,
)
from imaging.nvme_info import (
    NvmeParseError,
    SanitizeState,
    parse_id_ctrl,
    parse_id_ns_reads_zeros,
    parse_sanitize_log,
)

NVME = FIXTURES / "nvme"
HDPARM = FIXTURES / "hdparm"


def test_id_ctrl_capabilities():
    ctrl = parse_id_ctrl((NVME / "id-ctrl-sanitize-format.json").read_text())
    assert ctrl.model == "Samsung SSD 980 PRO 500GB" and ctrl.serial == "S5GYNX0T123456A"
    assert ctrl.format_supported and ctrl.crypto_format_supported
    assert ctrl.sanitize_crypto and ctrl.sanitize_block and not ctrl.sanitize_overwrite
    bare = parse_id_ctrl((NVME / "id-ctrl-no-erase.json").read_text())
    assert not bare.format_supported and not bare.sanitize_crypto and not bare.crypto_format_supported
    only = parse_id_ctrl((NVME / "id-ctrl-format-only.json").read_text())
    assert only.format_supported and not only.crypto_format_supported


def test_id_ctrl_rejects_garbage():
    with pytest.raises(NvmeParseError):
        parse_id_ctrl("NVMe status: INVALID_NS")
    with pytest.raises(NvmeParseError, match="oacs"):
        parse_id_ctrl('{"sn": "x"}')


@pytest.mark.parametrize(
    ("name", "state", "progress"),
    [
        ("sanitize-log-never.json", SanitizeState.NEVER, 65535),
        ("sanitize-log-in-progress.json", SanitizeState.IN_PROGRESS, 21845),
        ("sanitize-log-completed.json", SanitizeState.COMPLETED, 65535),
        ("sanitize-log-failed.json", SanitizeState.FAILED, 65535),
        ("sanitize-log-completed-v2.8.json", SanitizeState.COMPLETED, 65535),
    ],
)
def test_sanitize_log_states(name, state, progress):
    log = parse_sanitize_log((NVME / name).read_text())
    assert log.state is state and log.progress == progress


def test_sanitize_log_integer_sstat_and_unknown_status():
    assert parse_sanitize_log('{"sprog": 0, "sstat": 258}').state is SanitizeState.IN_PROGRESS
    with pytest.raises(NvmeParseError):
        parse_sanitize_log('{"sprog": 0, "sstat": 7}')


def test_id_ns_dlfeat():
    assert parse_id_ns_reads_zeros((NVME / "id-ns-reads-zeros.json").read_text())
    assert not parse_id_ns_reads_zeros((NVME / "id-ns-vendor.json").read_text())


def test_hdparm_identify_security_and_sanitize():
    ssd = parse_identify((HDPARM / "identify-ssd-sanitize.txt").read_text())
    assert ssd.model == "Samsung SSD 860 EVO 500GB" and ssd.serial == "S3Z2NB0K123456A"
    assert ssd.solid_state is True
    assert ssd.sanitize_supported and ssd.sanitize_crypto_scramble and ssd.sanitize_block_erase
    assert not ssd.sanitize_overwrite
    sec = ssd.security
    assert sec is not None and sec.supported and not sec.enabled and not sec.frozen and not sec.locked
    assert sec.enhanced_erase_supported and sec.erase_minutes == 2 and sec.master_revision == 65534


def test_hdparm_identify_frozen_enabled_and_absent():
    frozen = parse_identify((HDPARM / "identify-ssd-frozen.txt").read_text())
    assert frozen.security is not None and frozen.security.frozen
    assert not frozen.sanitize_supported
    enabled = parse_identify((HDPARM / "identify-hdd-security-enabled.txt").read_text())
    assert enabled.solid_state is False
    assert enabled.security is not None and enabled.security.enabled
    assert enabled.security.enhanced_erase_minutes == 104
    none = parse_identify((HDPARM / "identify-hdd-no-erase.txt").read_text())
    assert none.security is None and not none.sanitize_supported
    with pytest.raises(AtaParseError):
        parse_identify("/dev/sda:\nHDIO_DRIVE_CMD(identify) failed: Invalid argument\n")


def test_hdparm_hpa():
    hpa = parse_hpa((HDPARM / "hpa-enabled.txt").read_text())
    assert hpa.enabled and hpa.hidden_sectors == 4096 and hpa.native_sectors == 1953525168
    assert not parse_hpa((HDPARM / "hpa-disabled.txt").read_text()).hidden_sectors
    with pytest.raises(AtaParseError):
        parse_hpa("SG_IO: bad/missing sense data")


def test_hdparm_sanitize_status():
    read = lambda n: (HDPARM / n).read_text()  # noqa: E731
    assert parse_sanitize_status(read("sanitize-status-in-progress.txt")) is AtaSanitizeState.IN_PROGRESS
    assert parse_sanitize_status(read("sanitize-status-done.txt")) is AtaSanitizeState.IDLE_OK
    assert parse_sanitize_status(read("sanitize-status-failed.txt")) is AtaSanitizeState.FAILED
    assert parse_sanitize_status("Sanitize status:\n    State:    SD0 Sanitize Idle\n") is AtaSanitizeState.IDLE


def test_rejection_lines_are_found_even_with_exit_zero():
    assert rejection_in((HDPARM / "security-erase.txt").read_text()) is None
    line = rejection_in("", "SG_IO: bad/missing sense data, sb[]:  70 00 05 00")
    assert line is not None and line.startswith("SG_IO")
    assert rejection_in("SECURITY_ERASE: Input/output error") == "SECURITY_ERASE: Input/output error"
