"""udev adapter under umockdev: hotplug, enumeration at start-up, a replayed recording, filters.

The code under test runs in a subprocess under ``umockdev-wrapper`` (LD_PRELOAD), driven by
tests/harness/umockdev_run.py, which prints our typed events as JSON lines.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from harness.requirements import require, require_tool

from hardware_drivers.events import DeviceAttached, DeviceDetached
from hardware_drivers.port_map import PortMap

REPO = Path(__file__).resolve().parents[2]
HARNESS = REPO / "tests" / "harness" / "umockdev_run.py"
RECORDING = REPO / "tests" / "fixtures" / "udev" / "bench1-usb-sata-dock.umockdev"

DOCK_PATH = "pci-0000:00:14.0-usb-0:2.1"
DISK_PATH = "pci-0000:00:14.0-usb-0:2.1:1.0-scsi-0:0:0:0"


def run_scenario(*args: str) -> list[dict[str, Any]]:
    wrapper = require_tool("umockdev-wrapper")
    require(importlib.util.find_spec("gi") is not None, "needs PyGObject (pip install 'PyGObject<3.51')")
    proc = subprocess.run(
        [wrapper, sys.executable, str(HARNESS), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert proc.returncode == 0, f"harness failed ({proc.returncode}):\n{proc.stderr}"
    return [json.loads(line) for line in proc.stdout.splitlines()]


def summary(events: list[dict[str, Any]], phase: str) -> list[tuple[str, str, str | None]]:
    return [(e["event"], e["subsystem"], e["serial"]) for e in events if e["phase"] == phase]


def one(events: list[dict[str, Any]], phase: str, event: str, serial: str, subsystem: str = "block") -> dict[str, Any]:
    key = (phase, event, serial, subsystem)
    found = [e for e in events if (e["phase"], e["event"], e["serial"], e["subsystem"]) == key]
    assert len(found) == 1, f"expected one {event} for {serial} in {phase}, got {found}"
    return found[0]


@pytest.mark.parametrize("scenario", ["hotplug", "hotplug-async"])
def test_hotplug_dock_and_disk_become_typed_events(scenario: str) -> None:
    events = run_scenario(scenario)

    # Partition, loop device, USB interface and the "bind" uevent are all filtered out.
    assert summary(events, "monitor") == [
        ("DeviceAttached", "usb", "DOCK0001"),
        ("DeviceAttached", "block", "S6PNNS0T123456A"),
        ("DeviceChanged", "block", "S6PNNS0T123456A"),
        ("DeviceDetached", "block", "S6PNNS0T123456A"),
        ("DeviceDetached", "usb", "DOCK0001"),
    ]
    disk = one(events, "monitor", "DeviceAttached", "S6PNNS0T123456A")
    assert disk == {
        "phase": "monitor",
        "event": "DeviceAttached",
        "action": "add",
        "subsystem": "block",
        "sys_path": "/sys/devices/2-2.1/2-2.1:1.0/sdb",
        "device_node": "/dev/sdb",
        "devtype": "disk",
        "serial": "S6PNNS0T123456A",  # ID_SERIAL_SHORT wins over ID_SERIAL
        "vendor": "Samsung",
        "model": "SSD_870_EVO_250GB",
        "id_path": DISK_PATH,
        "bench_port": "B1-S1",
        "size_bytes": 488_397_168 * 512,
        "vendor_id": None,  # a block device: udev's usb_id properties are the dock's, not set here
        "product_id": None,
        "usb_interfaces": None,
    }
    dock = one(events, "monitor", "DeviceAttached", "DOCK0001", subsystem="usb")
    assert (dock["devtype"], dock["id_path"], dock["size_bytes"]) == ("usb_device", DOCK_PATH, None)
    gone = one(events, "monitor", "DeviceDetached", "S6PNNS0T123456A")
    # A removed disk still identifies itself (from the uevent) but has no size left to read.
    assert (gone["device_node"], gone["id_path"], gone["size_bytes"]) == ("/dev/sdb", DISK_PATH, None)


def test_enumeration_at_start_up_lists_whole_disks_and_usb_devices() -> None:
    events = run_scenario("enumerate")

    assert summary(events, "default") == [
        ("DeviceAttached", "usb", "DOCK0001"),
        ("DeviceAttached", "block", "S6PNNS0T123456A"),
        ("DeviceAttached", "block", "NVME0001"),
    ]
    assert summary(events, "block-only") == [
        ("DeviceAttached", "block", "S6PNNS0T123456A"),
        ("DeviceAttached", "block", "NVME0001"),
    ]
    nvme = one(events, "default", "DeviceAttached", "NVME0001")
    assert (nvme["device_node"], nvme["size_bytes"]) == ("/dev/nvme0n1", 1_000_215_216 * 512)

    with_parts = [e for e in events if e["phase"] == "partitions"]
    partitions = [e for e in with_parts if e["devtype"] == "partition"]
    assert [(p["device_node"], p["size_bytes"]) for p in partitions] == [("/dev/sdb1", 1_048_576 * 512)]
    assert "/dev/ram0" not in {e["device_node"] for e in events}


def test_replayed_recording_of_a_usb_sata_dock() -> None:
    events = run_scenario("replay", str(RECORDING))
    disk_serial = "5A1C0E27B3D94F60"
    disk_sys_path = "/sys/devices/pci0000:00/0000:00:14.0/usb2/2-2/2-2.1/2-2.1:1.0/host6/target6:0:0/6:0:0:0/block/sdb"

    # The JMicron bridge reports the disk's serial as its own: the subsystem tells them apart.
    plugged = one(events, "monitor", "DeviceAttached", disk_serial)
    bridge = one(events, "monitor", "DeviceAttached", disk_serial, subsystem="usb")
    assert (bridge["id_path"], bridge["model"]) == (DOCK_PATH, "USB_to_ATA_ATAPI_Bridge")
    assert plugged["sys_path"] == disk_sys_path
    assert (plugged["vendor"], plugged["model"]) == ("JMicron", "Generic")
    assert (plugged["id_path"], plugged["bench_port"]) == (DISK_PATH, "B1-S1")
    assert plugged["size_bytes"] == 500_118_192 * 512

    # Start-up enumeration sees the same tree, parents before children; the interface is not a device.
    present = [e for e in events if e["phase"] == "present"]
    assert [e["sys_path"].rsplit("/", 1)[-1] for e in present] == ["usb2", "2-2", "2-2.1", "sdb"]
    assert {e["event"] for e in present} == {"DeviceAttached"}

    assert summary(events, "unplug") == [("DeviceDetached", "block", disk_serial)]

    # The controller places the replayed disk through the site's port map, by bench port or path.
    fields = {k: v for k, v in plugged.items() if k not in {"phase", "event", "action"}}
    attached = DeviceAttached(**fields)
    by_label = PortMap.from_dict({"udev": [{"bench_port": "B1-S1", "slot": "bench-1/slot-1"}]})
    by_path = PortMap.from_dict({"udev": [{"id_path_prefix": f"{DOCK_PATH}:", "slot": "bench-1/slot-1"}]})
    assert by_label.slot_for_device(attached) == "bench-1/slot-1"
    assert by_path.slot_for_device(DeviceDetached(**fields)) == "bench-1/slot-1"


def test_loop_backed_line_needs_a_filter_that_allows_loop_devices() -> None:
    events = run_scenario("loop-line")

    assert summary(events, "line") == [("DeviceAttached", "block", "SIMDISK3")]  # ram1 filtered
    loop = one(events, "line", "DeviceAttached", "SIMDISK3")
    assert (loop["device_node"], loop["bench_port"], loop["size_bytes"]) == (
        "/dev/loop3",
        "SIM-S3",
        131_072 * 512,
    )
    assert summary(events, "line-present") == [("DeviceAttached", "block", "SIMDISK3")]
    assert summary(events, "default-present") == []  # production filter ignores loop devices


def test_harness_refuses_to_run_outside_umockdev() -> None:
    """Without the wrapper a testbed silently does nothing and pyudev sees the real /sys."""
    require(importlib.util.find_spec("gi") is not None, "needs PyGObject (pip install 'PyGObject<3.51')")
    proc = subprocess.run(
        [sys.executable, str(HARNESS), "hotplug"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if k != "LD_PRELOAD"},
    )
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == ""


def test_bridge_serials_that_name_no_one_disk_are_read_as_no_serial() -> None:
    """Real docks' variants (tests/fixtures/udev/VARIANTS.md): a bridge's placeholder serial, one serial
    for every bay of a multi-bay bridge, no iSerial at all. Each disk must come with no serial (the
    line then has it identified by hand), never one that another disk in such a dock also has."""
    events = run_scenario("replay", str(REPO / "tests" / "fixtures" / "udev" / "bench2-bridge-serials.umockdev"))
    disks = {e["device_node"]: e for e in events if e["phase"] == "present" and e["subsystem"] == "block"}

    assert {node: e["serial"] for node, e in disks.items()} == {
        "/dev/sdc": None,  # 0123456789ABCDEF: the bridge vendor's counting placeholder
        "/dev/sdd": None,  # bay 1 of two: the bridge's serial, made of its vendor id
        "/dev/sde": None,  # bay 2: the same serial again (LUN 1)
        "/dev/sdf": None,  # no ID_SERIAL_SHORT: ID_SERIAL is vendor_model, every unit alike
        "/dev/sdg": "WX61E83K2PLD",  # a bridge that passes the disk's own serial
        # A multi-bay bridge that passes ATA through (SAT): udev's ata_id read each disk's own serial
        # (ID_BUS=ata, systemd's 60-persistent-storage.rules runs it before usb_id on non-removable
        # USB disks), so bay 2 at LUN 1 keeps its serial; only usb_id's (the bridge's) is shared.
        "/dev/sdh": "WKP1A2B3",
        "/dev/sdi": "WKP4C5D6",
    }
    # Still placed by their port, and still told apart by path and size.
    assert disks["/dev/sde"]["id_path"] == "pci-0000:00:14.0-usb-0:4:1.0-scsi-0:0:0:1"
    assert disks["/dev/sdd"]["size_bytes"] == 1_953_525_168 * 512
    bridges = {e["id_path"]: e["serial"] for e in events if e["phase"] == "present" and e["subsystem"] == "usb"}
    assert bridges["pci-0000:00:14.0-usb-0:3"] is None and bridges["pci-0000:00:14.0-usb-0:6"] == "WX61E83K2PLD"
