"""A bench's tablet settings: read from TOML, refused with the reason when a tool or a service is
missing; a real line started with unusable settings stops with one line, before any device is touched."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from factory.cli.main import app
from factory.tablets.errors import TabletBenchUnavailable
from factory.tablets.service import load_bench
from imaging.tablets.device_management import AndroidManagement, AppleMdm, IntuneGraph
from imaging.tablets.emmc import parse_extcsd
from imaging.tablets.https_runner import SeamRouter
from imaging.tablets.identity import TabletProbe

EXTCSD = Path(__file__).resolve().parents[1] / "fixtures" / "tablets" / "outputs" / "mmc-extcsd-no-sanitize.txt"
SETTINGS = """
[apple_mdm]
url = "https://mdm.force.invalid"
token_file = "/etc/factory/apple-mdm.token"
[android]
service = "{android}"
enterprise = "LC02abcd"
token_file = "/etc/factory/android.token"
site_dpc = "uk.police.dpc"
[wait]
poll_seconds = 5
deadline_seconds = 600
[profiles]
"vehicle-tablet/standard" = "vehicle-policy"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tablets.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("android", "adapter"), [("android_management", AndroidManagement), ("intune", IntuneGraph)])
def test_settings_name_the_services_and_route_their_exchanges(tmp_path: Path, android: str, adapter: type) -> None:
    bench = load_bench(write(tmp_path, SETTINGS.format(android=android)))
    assert isinstance(bench.management["ipados"], AppleMdm) and isinstance(bench.management["android"], adapter)
    assert (bench.site_dpc, bench.wait.poll_interval, bench.wait.deadline_seconds) == ("uk.police.dpc", 5.0, 600.0)
    assert bench.profiles == {"vehicle-tablet/standard": "vehicle-policy"} and not bench.simulated
    router = bench.runner_for("R52N50ABCDE")
    assert isinstance(router, SeamRouter) and "https://mdm.force.invalid" in router.services
    unknown = router.run(["https", "GET", "https://elsewhere.invalid/x", ""], 5)  # nothing is sent anywhere else
    assert unknown.returncode < 0 and "no device-management service" in unknown.stderr


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[wait]\npoll_seconds = 5\n", "no device-management service"),
        ('[apple_mdm]\nurl = "https://mdm.force.invalid"\n', "[apple_mdm] needs an https url and token_file"),
        ("[apple_mdm\n", "tablet settings"),
    ],
)
def test_unusable_settings_are_refused_with_the_reason(tmp_path: Path, text: str, reason: str) -> None:
    with pytest.raises(TabletBenchUnavailable) as refused:
        load_bench(write(tmp_path, text))
    assert reason in refused.value.reason


def test_a_bench_without_the_tools_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # adb, idevice*, mmc not found
    with pytest.raises(TabletBenchUnavailable, match="tablet tools missing on this bench: adb, idevicepair"):
        load_bench(write(tmp_path, SETTINGS.format(android="intune")))


def test_a_real_line_with_unusable_tablet_settings_stops_with_one_line(tmp_path: Path) -> None:
    """Refused before the database is opened: no context is needed."""
    site = tmp_path / "site.toml"
    site.write_text(
        'agent = "tablet-site"\nerase_processes = 0\n[[bench]]\nname = "bench-1"\nslots = [{position = 1}]\n'
        '[port_map]\nudev = [{id_path = "pci-0000:00:14.0-usb-0:3", slot = "bench-1/slot-1"}]\n'
    )
    settings = write(tmp_path, "[wait]\npoll_seconds = 5\n")
    result = CliRunner().invoke(app, ["line", "run", "--config", str(site), "--tablets", str(settings)])
    assert result.exit_code != 0 and "Traceback" not in result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: tablet settings") and "no device-management service" in line


WINDOWS = SETTINGS.format(android="intune") + "[windows]\n"


def test_windows_settings_name_the_service_environment_node_and_the_exposed_emmc(tmp_path: Path) -> None:
    bench = load_bench(
        write(
            tmp_path,
            WINDOWS + 'emmc_node = "/dev/mmcblk1"\nemmc_exposed = "/dev/disk/by-id/usb-Bench_eMMC_{serial}-0:0"\n',
        )
    )
    assert bench.windows_node == "/dev/mmcblk1"
    assert bench.emmc_exposed("PTB55G20042") == "/dev/disk/by-id/usb-Bench_eMMC_PTB55G20042-0:0"
    assert bench.emmc_exposed("../../etc/passwd") is None  # a serial never climbs out of /dev
    table = load_bench(write(tmp_path, WINDOWS + 'emmc_exposed = {PTB55G20042 = "/dev/sdc"}\n'))
    assert (table.emmc_exposed("PTB55G20042"), table.emmc_exposed("PTB55G20043")) == ("/dev/sdc", None)
    assert table.windows_node == "/dev/mmcblk0"  # the bench stick's default
    assert load_bench(write(tmp_path, SETTINGS.format(android="intune"))).emmc_exposed("PTB55G20042") is None
    assert table.windows_disks == ()  # the service environment's every disk is looked at
    nodes = load_bench(write(tmp_path, WINDOWS + 'disk_nodes = ["/dev/nvme0n1", "/dev/sda"]\n'))
    assert nodes.windows_disks == ("/dev/nvme0n1", "/dev/sda")


def test_an_exposed_emmc_is_used_only_where_its_node_is_there(tmp_path: Path) -> None:
    text = WINDOWS + 'emmc_exposed = {PTB55G20042 = "/dev/null", PTB55G20043 = "/dev/df-no-such-emmc"}\n'
    bench = load_bench(write(tmp_path, text))
    ext = parse_extcsd(EXTCSD.read_text())
    there = TabletProbe("windows", "/dev/mmcblk0", serial="PTB55G20042", emmc=ext)
    assert bench.emmc_node(there) == "/dev/null"
    assert bench.emmc_node(replace(there, serial="PTB55G20043")) is None  # named, not attached: over SSH
    assert bench.service_environment(there) is None  # no SSH channel open for it


@pytest.mark.parametrize(
    ("windows", "reason"),
    [
        ('emmc_node = "mmcblk0"\n', "windows.emmc_node must be a block device path under /dev/, not 'mmcblk0'"),
        ('emmc_exposed = "/dev/sdc"\n', "windows.emmc_exposed: a path names the tablet by {serial} once"),
        ('emmc_exposed = "/tmp/{serial}.img"\n', "windows.emmc_exposed must be a block device path under /dev/"),
        ('emmc_exposed = "/dev/../etc/{serial}"\n', "must be a block device path under /dev/"),
        ('emmc_exposed = {"a/b" = "/dev/sdc"}\n', "windows.emmc_exposed: 'a/b' is not a tablet serial"),
        ('emmc_exposed = {PTB55G20042 = "sdc"}\n', "windows.emmc_exposed.PTB55G20042 must be a block device path"),
        ("emmc_exposed = 3\n", "windows.emmc_exposed must be a /dev/ path with {serial} or a table"),
        ('emmc = "/dev/sdc"\n', "[windows] takes emmc_node, emmc_exposed and disk_nodes, not emmc"),
        ('disk_nodes = "/dev/nvme0n1"\n', "windows.disk_nodes must be a list of /dev/ paths"),
        ('disk_nodes = ["nvme0n1"]\n', "windows.disk_nodes must be a block device path under /dev/, not 'nvme0n1'"),
    ],
)
def test_unusable_windows_settings_are_refused_with_the_reason(tmp_path: Path, windows: str, reason: str) -> None:
    with pytest.raises(TabletBenchUnavailable) as refused:
        load_bench(write(tmp_path, WINDOWS + windows))
    assert reason in refused.value.reason and str(tmp_path) in refused.value.reason
