"""Remote erase over SSH against the QEMU service-environment guest, down to signed certificates.

One guest boots per module; every test puts the known pattern back on the disks it uses (through
the host backing files) and checks the outcome against those files, the ground truth. QEMU's NVMe
Format really zero-fills and its Sanitize answers Invalid Command Opcode; its SATA disk has no
Security feature set and ignores security commands while hdparm exits 0.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from harness.bench_certificate import bench_context
from harness.domain import receive_guest_laptop
from harness.qemu_guest import MIB, NVME_SERIAL, ONE_GUEST_AT_A_TIME, SATA_SERIAL, GuestDisk, RunningGuest, booted_guest
from harness.qemu_guest import pattern_bytes as guest_pattern
from sqlmodel import select

from factory.intake.service import get_device
from factory.kernel.db.engine import session_scope
from factory.kernel.ledger.verify import verify_ledger
from factory.kernel.models.certificate import Certificate
from factory.kernel.models.custody_entry import CustodyEntry
from factory.kernel.site_keys import load_public_key
from factory.sanitisation.errors import RemoteUnavailable
from factory.sanitisation.service import sanitise_remote
from hardware_drivers.remote_commands import HostKeyMismatch, SshCommandRunner
from imaging.certificate import CertificateError, build_certificate, sign_certificate, verify_certificate
from imaging.errors import PlanError
from imaging.firmware_marker import MARKER_COUNT, WRITE_SCRIPT
from imaging.patterns import make_pattern
from imaging.remote_erase import RemoteWrite, erase_remote
from imaging.result import CommandRecord, EraseResult, Level, VerifyMode

pytestmark = [pytest.mark.root, pytest.mark.slow, ONE_GUEST_AT_A_TIME]  # slow: boots the QEMU guest

DISK = 16 * MIB

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "firmware"


@pytest.fixture(scope="module")
def guest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGuest]:
    # 16 MiB disks: still 1000 subsections for the NIST sample, and each read-back stays short under TCG.
    yield from booted_guest(tmp_path_factory.mktemp("qemu-erase"), nvme_size=DISK, sata_size=DISK)


@pytest.fixture(scope="module")
def runner(guest: RunningGuest) -> Iterator[SshCommandRunner[CommandRecord]]:
    with SshCommandRunner(guest.ssh_target(), record_factory=CommandRecord) as r:
        yield r


def fresh(disk: GuestDisk) -> None:
    disk.restore_pattern(0, disk.size)


def assert_zeros(disk: GuestDisk) -> None:
    assert disk.read_image(0, disk.size) == bytes(disk.size)


def assert_keystream(disk: GuestDisk, seed_hex: str | None) -> None:
    """Every byte is the recorded key's AES-CTR stream (what a random overwrite certifies)."""
    assert seed_hex is not None
    pattern = make_pattern("random", bytes.fromhex(seed_hex))
    want = bytearray(disk.size)
    pattern.fill(want, 0, disk.size, bytes(disk.size))
    assert disk.read_image(0, disk.size) == bytes(want)


def assert_untouched(disk: GuestDisk) -> None:
    assert disk.read_image(0, disk.size) == guest_pattern(0, disk.size)


def assert_untouched_but_markers(disk: GuestDisk, result: EraseResult) -> None:
    """The pattern is intact except in the blocks the recorded marker command wrote (random now)."""
    [marker] = commands_named(result, "sh", "-c", WRITE_SCRIPT, "df-marker", disk.device)
    numbers = marker.argv[5:]
    blocks = [(int(n) * int(size), int(size)) for n, size in zip(numbers[::2], numbers[1::2], strict=True)]
    assert marker.returncode == 0 and len(blocks) == MARKER_COUNT
    image, want = disk.read_image(0, disk.size), bytearray(guest_pattern(0, disk.size))
    for offset, size in blocks:
        assert image[offset : offset + size] != want[offset : offset + size]
        want[offset : offset + size] = image[offset : offset + size]
    assert image == bytes(want)


def impostor_key() -> str:
    from cryptography.hazmat.primitives import serialization

    public = ed25519.Ed25519PrivateKey.generate().public_key()
    return public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


@dataclass
class ClaimingAccess:
    """The real guest, except that identify data claims capabilities QEMU lacks.

    Models drives that advertise a feature and then refuse it: every command still runs on the
    guest, so what the drive does (nothing) and what the tools print come from the guest.
    """

    inner: SshCommandRunner[CommandRecord]
    ata_identify: str | None = None  # served for every `hdparm -I`, with the guest disk's serial
    nvme_sanicap: int | None = None  # patched into `nvme id-ctrl` output

    def run(self, argv: Sequence[str], timeout: float) -> CommandRecord:
        record = self.inner.run(argv, timeout)
        argv = tuple(argv)
        if self.ata_identify is not None and argv[:2] == ("hdparm", "-I"):
            text = re.sub(r"(Serial Number:\s+)\S+", rf"\g<1>{SATA_SERIAL}", self.ata_identify)
            return CommandRecord(argv, 0, f"\n{argv[2]}:\n{text}", "", record.started_at, record.ended_at)
        if self.nvme_sanicap is not None and argv[:2] == ("nvme", "id-ctrl") and record.returncode == 0:
            ctrl = json.loads(record.stdout)
            ctrl["sanicap"] = self.nvme_sanicap
            return CommandRecord(argv, 0, json.dumps(ctrl), record.stderr, record.started_at, record.ended_at)
        return record

    def write_pattern(self, device: str, **options: Any) -> RemoteWrite:
        """Writes reach the guest as erase_remote gives them to a plain runner (no claim to doctor)."""
        return self.inner.write_pattern(device, **options)

    def device_size(self, device: str) -> int:
        return self.inner.device_size(device)


def commands_named(result: EraseResult, *head: str) -> list[CommandRecord]:
    return [c for c in result.commands if c.argv[: len(head)] == head]


def sign_offline(result: EraseResult) -> tuple[dict, ed25519.Ed25519PublicKey]:
    key = ed25519.Ed25519PrivateKey.generate()
    context = bench_context("test-site", "GUEST-1", model=("QEMU", "Standard PC"))
    return sign_certificate(build_certificate(result, context), key), key.public_key()


# ------------------------------------------------------------------------------------ NVMe


def test_nvme_remote_erase_clears_by_format_and_certifies(guest: RunningGuest, runner) -> None:
    fresh(guest.nvme)
    # QEMU's controller has no Sanitize and its Format is a user data erase: Clear per IEEE 2883.
    with pytest.raises(PlanError, match="nvme-format-erase: achieves clear only"):
        erase_remote(runner, guest.nvme.device, level=Level.PURGE)

    result = erase_remote(runner, guest.nvme.device, level=Level.CLEAR, remote_label="qemu guest")

    assert result.ok, result.failure_reason
    assert (result.method, result.level_achieved) == ("nvme-format-erase", Level.CLEAR)
    assert result.media.serial == NVME_SERIAL and result.media.media_type == "nvme"
    [fmt] = commands_named(result, "nvme", "format")
    assert fmt.returncode == 0 and "Success formatting namespace" in fmt.stdout
    check = result.verification
    assert check is not None and check.passed and check.mode is VerifyMode.SAMPLE
    assert check.expected_pattern == "zeros" and check.subsections >= 1000 and check.locations >= 2000
    assert check.coverage >= 0.10 and check.seed_hex
    assert any("nvme-sanitize-crypto: unsupported here: controller SANICAP 0x0" in n for n in result.notes)
    envelope, public_key = sign_offline(result)
    verified = verify_certificate(json.loads(json.dumps(envelope)), public_key)
    assert verified.certificate["sanitisation"]["method"] == "nvme-format-erase"
    assert_zeros(guest.nvme)


def test_advertised_sanitize_refused_with_invalid_opcode_falls_back_to_format(guest: RunningGuest, runner) -> None:
    fresh(guest.nvme)
    access = ClaimingAccess(runner, nvme_sanicap=0b11)  # claims crypto and block sanitize

    result = erase_remote(access, guest.nvme.device, level=Level.CLEAR, verify=VerifyMode.FULL)

    assert result.ok, result.failure_reason
    assert (result.method, result.level_achieved) == ("nvme-format-erase", Level.CLEAR)
    sanitizes = commands_named(result, "nvme", "sanitize")
    assert [c.argv[-1] for c in sanitizes] == ["--sanact=4", "--sanact=2"]
    assert all(c.returncode != 0 and "Invalid Command Opcode" in c.stderr for c in sanitizes)
    assert any(n.startswith("nvme-sanitize-crypto refused by the drive, nothing started") for n in result.notes)
    assert "falling back to nvme-format-erase (clear)" in result.notes
    assert result.verification is not None and result.verification.coverage == 1.0
    assert_zeros(guest.nvme)


# ------------------------------------------------------------------------------------ SATA


def test_sata_purge_is_refused_before_anything_is_written(guest: RunningGuest, runner) -> None:
    fresh(guest.sata)
    with pytest.raises(PlanError, match=r"cannot achieve purge on /dev/sda .*lacks the Security feature set"):
        erase_remote(runner, guest.sata.device, level=Level.PURGE)
    assert_untouched(guest.sata)


def test_security_erase_that_changes_nothing_never_yields_a_purge_certificate(guest: RunningGuest, runner) -> None:
    fresh(guest.sata)
    # A drive whose identify advertises security (and enhanced erase) that it then ignores.
    access = ClaimingAccess(runner, ata_identify=(FIXTURES / "hdparm" / "identify-hdd-security.txt").read_text())

    result = erase_remote(access, guest.sata.device, level=Level.PURGE)

    assert not result.ok and result.level_achieved is None
    assert result.method == "ata-secure-erase-enhanced"
    assert "drive rejected SECURITY SET PASSWORD" in (result.failure_reason or "")
    assert "no other method reaches purge" in (result.failure_reason or "")
    [set_pass] = commands_named(result, "hdparm", "--user-master", "u", "--security-set-pass")
    assert set_pass.returncode == 0  # hdparm reports success; only the re-read security state tells
    assert not commands_named(result, "hdparm", "--user-master", "u", "--security-erase-enhanced")
    assert not commands_named(result, "dd")
    with pytest.raises(CertificateError):
        sign_offline(result)
    assert_untouched_but_markers(guest.sata, result)


def test_refused_security_erase_falls_back_to_overwrite_when_clear_was_asked(guest: RunningGuest, runner) -> None:
    fresh(guest.sata)
    access = ClaimingAccess(runner, ata_identify=(FIXTURES / "hdparm" / "identify-hdd-security.txt").read_text())

    result = erase_remote(access, guest.sata.device, level=Level.CLEAR, verify=VerifyMode.FULL)

    assert result.ok, result.failure_reason
    assert (result.method, result.level_achieved, result.level_requested) == (
        "overwrite-random",
        Level.CLEAR,
        Level.CLEAR,
    )
    refused = [n for n in result.notes if "refused by the drive" in n]
    assert [n.split()[0] for n in refused] == ["ata-secure-erase-enhanced", "ata-secure-erase-normal"]
    assert result.bytes_written == guest.sata.size
    assert result.hidden_areas.hpa_present_before is False
    assert result.verification is not None and result.verification.expected_pattern == "random"
    assert_keystream(guest.sata, result.pattern_seed_hex)


# ------------------------------------------------------------------------------------ factory


def custody_events(ctx, serial: str) -> list[str]:
    with session_scope(ctx.engine) as s:
        device = get_device(s, serial)
        rows = s.exec(select(CustodyEntry).where(CustodyEntry.device_id == device.id).order_by(CustodyEntry.seq))
        return [row.event for row in rows]


def test_factory_sanitises_both_media_over_ssh(ctx, guest: RunningGuest) -> None:
    fresh(guest.nvme)
    fresh(guest.sata)
    receive_guest_laptop(ctx, "GUEST-1", [("nvme", NVME_SERIAL), ("hdd", SATA_SERIAL)], DISK)

    report = sanitise_remote(ctx, "GUEST-1", guest.ssh_target(), actor="tech.one", level=Level.CLEAR)

    assert report.ok, report.failure_reason
    assert report.state == "sanitised"
    methods = {m.medium_serial: (m.remote_device, m.result.method if m.result else None) for m in report.media}
    assert methods == {
        NVME_SERIAL: ("/dev/nvme0n1", "nvme-format-erase"),
        SATA_SERIAL: ("/dev/sda", "overwrite-random"),
    }
    public_key = load_public_key(ctx.settings)
    with session_scope(ctx.engine) as s:
        assert get_device(s, "GUEST-1").state == "sanitised"
        certificates = s.exec(select(Certificate)).all()
        assert sorted(c.medium_serial for c in certificates) == sorted([NVME_SERIAL, SATA_SERIAL])
        assert {c.id for c in certificates} == {m.certificate_id for m in report.media}
        signed = {
            c.medium_serial: verify_certificate(json.loads(c.envelope), public_key).certificate for c in certificates
        }
    assert all(doc["verification"]["passed"] is True for doc in signed.values())
    assert {c.level for c in certificates} == {"clear"}
    assert signed[SATA_SERIAL]["personnel"]["sanitised_by"]["account"] == "tech.one"
    assert custody_events(ctx, "GUEST-1") == ["receive", "start_sanitise", "sanitised"]
    assert verify_ledger(ctx.engine).ok
    assert_zeros(guest.nvme)
    assert_keystream(guest.sata, signed[SATA_SERIAL]["sanitisation"]["pattern_seed_hex"])


def test_factory_fails_a_device_whose_medium_is_not_on_the_remote(ctx, guest: RunningGuest) -> None:
    fresh(guest.nvme)
    receive_guest_laptop(ctx, "GUEST-2", [("nvme", NVME_SERIAL), ("sata-ssd", "NOT-IN-THIS-LAPTOP")], DISK)

    report = sanitise_remote(ctx, "GUEST-2", guest.ssh_target(), actor="tech.one", level=Level.CLEAR)

    assert not report.ok and report.state == "sanitise_failed"
    assert "medium NOT-IN-THIS-LAPTOP not found on the remote" in (report.failure_reason or "")
    assert custody_events(ctx, "GUEST-2") == ["receive", "start_sanitise", "fail"]
    with session_scope(ctx.engine) as s:
        assert s.exec(select(Certificate)).all() == []
    assert_untouched(guest.nvme)  # nothing is erased when the device is not the one recorded


def test_host_key_mismatch_is_refused_before_anything_is_written(ctx, guest: RunningGuest) -> None:
    fresh(guest.nvme)
    receive_guest_laptop(ctx, "GUEST-3", [("nvme", NVME_SERIAL)], DISK)
    impostor = guest.ssh_target(host_key=impostor_key())

    with pytest.raises(RemoteUnavailable, match="host key mismatch"):
        sanitise_remote(ctx, "GUEST-3", impostor, actor="tech.one", level=Level.CLEAR)
    with pytest.raises(HostKeyMismatch):
        erase_remote(SshCommandRunner(impostor, record_factory=CommandRecord), guest.nvme.device, level=Level.CLEAR)

    assert custody_events(ctx, "GUEST-3") == ["receive"]
    assert_untouched(guest.nvme)
