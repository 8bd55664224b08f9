"""A Windows tablet on a real line: its eMMC commands run in its service environment over SSH (a
real sshd), never on the bench host; without an endpoint or when it cannot be reached the job is
held with the reason and the device is untouched. An eMMC without sanitize is overwritten and read
back there by the laptops' remote erase (a loop device stands in for the eMMC)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from harness.disks import MIB, PLANT, assert_every_byte, loop_device, make_image
from harness.domain import receive, state_of
from harness.sshd import SshdTarget, one_sshd_target
from sqlmodel import col, select

from factory.intake.service import MediaSpec, register_endpoint
from factory.kernel.db.engine import session_scope
from factory.kernel.models.certificate import Certificate
from factory.kernel.site_keys import load_public_key
from factory.line.bench_config import load_line_config
from factory.line.controller import Controller
from factory.line.models import Job, JobStep
from factory.tablets.service import TabletBench
from factory.tablets.views import latest_tablet_round
from hardware_drivers.events import DeviceAttached
from imaging.certificate import verify_certificate
from imaging.commands import CommandRunner, ReplayRunner
from imaging.remote_erase import FLASH_RESIDUAL, RemoteWrite
from imaging.result import CommandRecord

pytestmark = pytest.mark.slow  # a real sshd per module and three line runs

SERIAL = "PTB55G20042"
PORT = "pci-0000:00:14.0-usb-0:3.3"
OUTPUTS = Path(__file__).resolve().parents[1] / "fixtures" / "tablets" / "outputs"
EXTCSD_NO_SANITIZE = OUTPUTS / "mmc-extcsd-no-sanitize.txt"


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdTarget]:
    yield from one_sshd_target(tmp_path_factory.mktemp("wintab"), prefix="wt")


def gadget() -> DeviceAttached:
    """The Windows tablet booted from the bench stick, as tests/fixtures/udev/bench1-windows-tablet.umockdev."""
    return DeviceAttached(
        subsystem="usb",
        sys_path="/sys/devices/pci0000:00/0000:00:14.0/usb3/3-3/3-3.3",
        device_node="/dev/bus/usb/003/007",
        devtype="usb_device",
        serial=SERIAL,
        vendor="Linux_6.1.0-28-amd64_with_dwc3-pci",
        model="Device_Factory_service_environment",
        id_path=PORT,
        bench_port=None,
        size_bytes=None,
        vendor_id="1d6b",
        product_id="0104",
        usb_interfaces=":020d00:0a0000:",
    )


def run_line(ctx, tmp_path: Path, key: Path, bench: TabletBench | None = None) -> Job:
    site = tmp_path / "site.toml"
    site.write_text(
        'agent = "win-agent"\nerase_processes = 0\n[[bench]]\nname = "bench-1"\nslots = [{position = 1}]\n'
        f'[port_map]\nudev = [{{id_path = "{PORT}", slot = "bench-1/slot-1"}}]\n'
        f'[service_env]\nssh_private_key = "{key}"\n'
    )
    bench = bench or TabletBench()  # a real bench: tools run for real
    controller = Controller(ctx, load_line_config(site), tablets=bench)
    controller.start()
    try:
        controller.submit(gadget())
        assert controller.wait_idle(60)
        with session_scope(controller.engine) as s:
            job = s.exec(select(Job).order_by(col(Job.id).desc())).first()
            assert job is not None
            return job
    finally:
        controller.stop(drain_seconds=5)


def test_the_emmc_is_read_in_the_service_environment_over_ssh(ctx, tmp_path: Path, target: SshdTarget) -> None:
    receive(ctx, SERIAL, [MediaSpec("emmc", SERIAL, 64 * 10**9)], kind="tablet")
    with session_scope(ctx.engine) as s:
        register_endpoint(
            s, SERIAL, address="127.0.0.1", port=target.port, username="root", host_key=target.host_key_pub, actor="t"
        )
    job = run_line(ctx, tmp_path, target.client_key)
    # The real mmc ran over SSH in the service environment, which has no eMMC: held with its answer.
    reason = job.reason or ""
    assert job.status == "held" and reason.startswith("mmc extcsd:"), reason
    assert "open: No such file or directory" in reason  # the login shell may add its own lines before it
    assert state_of(ctx, SERIAL) == "received"


def test_an_unreachable_service_environment_holds_the_job(ctx, tmp_path: Path, target: SshdTarget) -> None:
    receive(ctx, SERIAL, [MediaSpec("emmc", SERIAL, 64 * 10**9)], kind="tablet")
    with session_scope(ctx.engine) as s:
        register_endpoint(
            s, SERIAL, address="127.0.0.1", port=1, username="root", host_key=target.host_key_pub, actor="t"
        )
    job = run_line(ctx, tmp_path, target.client_key)
    assert job.status == "held" and (job.reason or "").startswith("service environment unreachable"), job.reason


def test_without_an_endpoint_a_windows_tablet_is_held(ctx, tmp_path: Path, target: SshdTarget) -> None:
    receive(ctx, SERIAL, [MediaSpec("emmc", SERIAL, 64 * 10**9)], kind="tablet")
    job = run_line(ctx, tmp_path, target.client_key)
    assert (job.status, job.reason) == ("held", "no service-environment endpoint recorded for this Windows tablet")
    assert state_of(ctx, SERIAL) == "received"


@dataclass
class EmmcOnLoop:
    """The service environment over the real SSH channel, a loop device standing in for its eMMC:
    every command runs there (the remote probe, dd, the read-back). Only ``mmc extcsd read``, which
    needs a real eMMC controller, is answered with the recorded EXT_CSD of a part without sanitize
    after it ran there for real (and failed: a loop device has no EXT_CSD)."""

    inner: Any  # the line's SshCommandRunner

    def run(self, argv: Sequence[str], timeout: float) -> CommandRecord:
        record = self.inner.run(argv, timeout)
        if tuple(argv[:3]) != ("mmc", "extcsd", "read"):
            return record
        return CommandRecord(tuple(argv), 0, EXTCSD_NO_SANITIZE.read_text(), "", record.started_at, record.ended_at)

    def write_pattern(self, device: str, **options: Any) -> RemoteWrite:
        return self.inner.write_pattern(device, **options)

    def device_size(self, device: str) -> int:
        return self.inner.device_size(device)

    def close(self) -> None:
        self.inner.close()


class LoopEmmcBench(TabletBench):
    """A real bench (tools, SSH) whose service environment's eMMC is the loop device."""

    def open_channel(self, ref: str, tools: CommandRunner) -> None:
        super().open_channel(ref, EmmcOnLoop(tools))


def test_an_emmc_without_sanitize_is_overwritten_over_ssh_by_the_remote_erase(
    ctx, tmp_path: Path, target: SshdTarget
) -> None:
    """No sanitize on the eMMC: the planner falls to the overwrite, which runs in the service
    environment through the laptops' remote erase (remote probe, the remote's dd with the keyed
    stream, read-back there) and is certified Clear with the residual risk stated."""
    receive(ctx, SERIAL, [MediaSpec("emmc", SERIAL, 8 * MIB)], kind="tablet")
    with session_scope(ctx.engine) as s:
        register_endpoint(
            s, SERIAL, address="127.0.0.1", port=target.port, username="root", host_key=target.host_key_pub, actor="t"
        )
    with loop_device(make_image(tmp_path / "emmc.img", 8 * MIB)) as node:
        job = run_line(ctx, tmp_path, target.client_key, LoopEmmcBench(windows_node=node))
        with session_scope(ctx.engine) as s:
            steps = s.exec(select(JobStep).where(JobStep.job_id == job.id).order_by(col(JobStep.position))).all()
            [cert] = s.exec(select(Certificate).where(Certificate.device_serial == SERIAL)).all()
            record = latest_tablet_round(s, SERIAL)
        assert [(st.name, st.status) for st in steps][:2] == [
            ("identify tablet", "succeeded"),
            ("sanitise (platform reset)", "succeeded"),
        ], job.reason
        doc = verify_certificate(json.loads(cert.envelope), load_public_key(ctx.settings)).certificate
        sanitisation = doc["sanitisation"]
        assert (sanitisation["technique"], sanitisation["level_achieved"]) == ("overwrite", "clear")
        # Every byte of the stand-in eMMC is the keyed stream the certificate records: nothing planted survives.
        assert_every_byte(node, 8 * MIB, "random", sanitisation["pattern_seed_hex"])
    assert PLANT not in (tmp_path / "emmc.img").read_bytes()
    assert doc["verification"]["passed"] is True and doc["verification"]["mismatches"] == 0
    assert any(r.startswith("eMMC without sanitize, overwritten from the host: Clear") for r in doc["residual_risk"])
    argv = [" ".join(c["argv"][:3]) for c in sanitisation["commands"]]
    assert "mmc extcsd read" in argv and not any(a.startswith("mmc sanitize") for a in argv)
    written = [c for c in sanitisation["commands"] if f"of={node} " in " ".join(c["argv"])]
    assert written and all(c["returncode"] == 0 for c in written)  # the remote's own dd wrote the stand-in eMMC
    assert record is not None and record.certified and record.closing["wipe"]["path"] == "erase engine (overwrite)"


# ------------------------------------------------------------------ NVMe and SATA storage

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tablets"
NVME_SERIAL = "S5GYNX0T123456A"  # the recorded id-ctrl's serial (tests/fixtures/firmware/nvme)
SATA_SERIAL = "S3Z2NB0K123456A"  # the recorded hdparm -I's serial (tests/fixtures/firmware/hdparm)
# The sysfs a kernel gives each kind of disk: the name and device path the remote probe takes the transport from.
SYSFS = {
    "nvme": ("nvme0n1", "/sys/devices/pci0000:00/0000:00:1d.0/0000:3c:00.0/nvme/nvme0/nvme0n1"),
    "sata": ("sda", "/sys/devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block/sda"),
}


@dataclass
class DiskOnLoop:
    """The service environment over the real SSH channel, a loop device standing in for the
    tablet's NVMe or SATA disk: the remote probe, blockdev, dd and the read-back run there. What
    needs the drive's controller is answered from the laptop tests' recorded nvme-cli / hdparm
    outputs (a ``ReplayRunner`` scenario), and the drive's own work (a sanitize zero-filling or
    scrambling the medium) is done there by the remote's dd over the same channel. The probe
    script's real output is kept but for the name and device path the kernel gives such a disk."""

    inner: Any  # the line's SshCommandRunner
    node: str
    scenario: Path
    kind: str  # "nvme" or "sata"

    def __post_init__(self) -> None:
        effects = {"zero-fill": self._zero_fill, "scramble": self._scramble, "channel-lost": self._channel_lost}
        self.drive = ReplayRunner(self.scenario, device=self.node, effects=effects)

    def run(self, argv: Sequence[str], timeout: float) -> CommandRecord:
        if argv[0] in ("nvme", "hdparm"):  # the drive's controller: recorded (a loop device has none)
            return self.drive.run(argv, timeout)
        record = self.inner.run(argv, timeout)
        if tuple(argv[:2]) != ("sh", "-c") or "df-probe" not in argv:
            return record
        name, syspath = SYSFS[self.kind]
        text = re.sub(r"(?m)^name=.*$", f"name={name}", record.stdout)
        text = re.sub(r"(?m)^syspath=.*$", f"syspath={syspath}", text)
        text = re.sub(r"(?m)^attr:queue/rotational=.*$", "attr:queue/rotational=0", text)
        return replace(record, stdout=text)

    def _zero_fill(self, _argv: tuple[str, ...]) -> None:
        self.inner.write_pattern(self.node)

    def _scramble(self, _argv: tuple[str, ...]) -> None:
        self.inner.write_pattern(self.node, key=os.urandom(32))

    def _channel_lost(self, _argv: tuple[str, ...]) -> None:
        """The service environment drops off the network as the drive starts: the channel closes
        and every reconnection is refused (a port nothing listens on)."""
        self.inner.close()
        self.inner.target = replace(self.inner.target, port=1)

    def write_pattern(self, device: str, **options: Any) -> RemoteWrite:
        return self.inner.write_pattern(device, **options)

    def device_size(self, device: str) -> int:
        return self.inner.device_size(device)

    def close(self) -> None:
        self.inner.close()


@dataclass
class LoopDiskBench(TabletBench):
    """A real bench (tools, SSH) whose tablet's disk in the service environment is the loop device."""

    scenario: Path = FIXTURES / "windows-nvme-sanitize-crypto.json"
    kind: str = "nvme"

    def open_channel(self, ref: str, tools: CommandRunner) -> None:
        node = self.windows_disks[0]
        super().open_channel(ref, DiskOnLoop(tools, node, self.scenario, self.kind))


def _tablet_with_disk(ctx, target: SshdTarget, media: str, serial: str) -> None:
    receive(ctx, SERIAL, [MediaSpec(media, serial, 8 * MIB)], kind="tablet")
    with session_scope(ctx.engine) as s:
        register_endpoint(
            s, SERIAL, address="127.0.0.1", port=target.port, username="root", host_key=target.host_key_pub, actor="t"
        )


def _sanitised(ctx, job: Job) -> bool:
    with session_scope(ctx.engine) as s:
        steps = s.exec(select(JobStep).where(JobStep.job_id == job.id).order_by(col(JobStep.position))).all()
    return [(st.name, st.status) for st in steps][:2] == [
        ("identify tablet", "succeeded"),
        ("sanitise (platform reset)", "succeeded"),
    ]


def _certificate(ctx, serial: str) -> dict[str, Any]:
    with session_scope(ctx.engine) as s:
        [cert] = s.exec(select(Certificate).where(Certificate.device_serial == SERIAL)).all()
        assert cert.medium_serial == serial
        envelope = json.loads(cert.envelope)
    return verify_certificate(envelope, load_public_key(ctx.settings)).certificate


def _assert_uncertified(ctx) -> None:
    """No certificate for the tablet, and its erase round closed uncertified."""
    with session_scope(ctx.engine) as s:
        assert not s.exec(select(Certificate).where(Certificate.device_serial == SERIAL)).all()
        record = latest_tablet_round(s, SERIAL)
    assert record is not None and not record.certified


def test_an_nvme_tablet_is_crypto_sanitised_over_ssh_and_certified_as_a_laptop_disk(
    ctx, tmp_path: Path, target: SshdTarget
) -> None:
    """NVMe storage: found in the service environment by its recorded serial, sanitised there by the
    laptops' remote erase with the strongest method the drive offers (crypto sanitize, Purge),
    verified by reading the disk back there, and certified under the disk's own serial."""
    _tablet_with_disk(ctx, target, "nvme", NVME_SERIAL)
    with loop_device(make_image(tmp_path / "nvme.img", 8 * MIB)) as node:
        job = run_line(ctx, tmp_path, target.client_key, LoopDiskBench(windows_disks=(node,)))
        assert _sanitised(ctx, job), job.reason
        doc = _certificate(ctx, NVME_SERIAL)
    assert PLANT not in (tmp_path / "nvme.img").read_bytes() and not any((tmp_path / "nvme.img").read_bytes())
    sanitisation = doc["sanitisation"]
    assert (sanitisation["method"], sanitisation["level_achieved"]) == ("nvme-sanitize-crypto", "purge")
    assert doc["media"]["serial_number"] == NVME_SERIAL and doc["media"]["media_type"] == "nvme"
    assert doc["verification"]["passed"] is True and doc["verification"]["mismatches"] == 0
    argv = [" ".join(c["argv"][:2]) for c in sanitisation["commands"]]
    assert "nvme sanitize" in argv and "blockdev --getsize64" in argv
    assert not any(a.startswith("mmc ") for a in argv)  # no eMMC read for a tablet with an NVMe recorded
    with session_scope(ctx.engine) as s:
        record = latest_tablet_round(s, SERIAL)
    assert record is not None and record.certified
    assert record.closing["wipe"]["path"] == "erase engine (remote erase over SSH)"


def test_a_sata_tablet_is_sanitised_over_ssh_by_ata_sanitize(ctx, tmp_path: Path, target: SshdTarget) -> None:
    _tablet_with_disk(ctx, target, "sata-ssd", SATA_SERIAL)
    scenario = FIXTURES / "windows-sata-sanitize-crypto.json"
    with loop_device(make_image(tmp_path / "sata.img", 8 * MIB)) as node:
        bench = LoopDiskBench(windows_disks=(node,), scenario=scenario, kind="sata")
        job = run_line(ctx, tmp_path, target.client_key, bench)
        assert _sanitised(ctx, job), job.reason
        doc = _certificate(ctx, SATA_SERIAL)
    assert PLANT not in (tmp_path / "sata.img").read_bytes()
    sanitisation = doc["sanitisation"]
    assert sanitisation["method"].startswith("ata-sanitize") and sanitisation["level_achieved"] == "purge"
    assert doc["media"]["serial_number"] == SATA_SERIAL and doc["verification"]["passed"] is True


def test_a_failed_disk_sanitize_yields_no_certificate(ctx, tmp_path: Path, target: SshdTarget) -> None:
    _tablet_with_disk(ctx, target, "nvme", NVME_SERIAL)
    scenario = FIXTURES / "windows-nvme-sanitize-failed.json"
    with loop_device(make_image(tmp_path / "nvme.img", 8 * MIB)) as node:
        job = run_line(ctx, tmp_path, target.client_key, LoopDiskBench(windows_disks=(node,), scenario=scenario))
    _assert_uncertified(ctx)
    assert job.status == "failed" and "sanitize" in (job.reason or ""), job.reason
    assert PLANT in (tmp_path / "nvme.img").read_bytes()  # the drive erased nothing, and nothing claims it did


def test_a_recorded_disk_missing_from_the_service_environment_holds_the_job(
    ctx, tmp_path: Path, target: SshdTarget
) -> None:
    _tablet_with_disk(ctx, target, "nvme", "S5GYNX0T999999Z")
    with loop_device(make_image(tmp_path / "nvme.img", 8 * MIB)) as node:
        job = run_line(ctx, tmp_path, target.client_key, LoopDiskBench(windows_disks=(node,)))
    reason = job.reason or ""
    assert job.status == "held" and reason.startswith("medium S5GYNX0T999999Z not found in the service environment")
    assert NVME_SERIAL in reason and state_of(ctx, SERIAL) == "received"
    assert PLANT in (tmp_path / "nvme.img").read_bytes()


def test_an_nvme_without_firmware_erase_is_overwritten_over_ssh_with_the_residual_risk(
    ctx, tmp_path: Path, target: SshdTarget
) -> None:
    """No Sanitize, no Format NVM: the remote erase falls to the keyed overwrite there, Clear, with
    the flash's residual risk stated, and every byte of the disk is the recorded key's stream."""
    _tablet_with_disk(ctx, target, "nvme", "deadbeef")  # the recorded id-ctrl's serial
    scenario = FIXTURES / "windows-nvme-no-erase.json"
    with loop_device(make_image(tmp_path / "nvme.img", 8 * MIB)) as node:
        job = run_line(ctx, tmp_path, target.client_key, LoopDiskBench(windows_disks=(node,), scenario=scenario))
        assert _sanitised(ctx, job), job.reason
        doc = _certificate(ctx, "deadbeef")
        sanitisation = doc["sanitisation"]
        assert_every_byte(node, 8 * MIB, "random", sanitisation["pattern_seed_hex"])
    assert (sanitisation["technique"], sanitisation["level_achieved"]) == ("overwrite", "clear")
    assert FLASH_RESIDUAL in doc["residual_risk"]
    assert not any("eMMC" in risk for risk in doc["residual_risk"])  # an NVMe's own risk, not an eMMC's
    assert doc["verification"]["passed"] is True and doc["verification"]["expected_pattern"] == "random"


def test_a_channel_lost_during_the_sanitize_is_an_unknown_outcome_with_no_certificate(
    ctx, tmp_path: Path, target: SshdTarget
) -> None:
    _tablet_with_disk(ctx, target, "nvme", NVME_SERIAL)
    scenario = FIXTURES / "windows-nvme-channel-lost.json"
    with loop_device(make_image(tmp_path / "nvme.img", 8 * MIB)) as node:
        job = run_line(ctx, tmp_path, target.client_key, LoopDiskBench(windows_disks=(node,), scenario=scenario))
    _assert_uncertified(ctx)
    assert job.status == "failed" and "no longer answers" in (job.reason or ""), job.reason
