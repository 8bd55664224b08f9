"""Drive hardware_drivers.udev against a umockdev testbed; print our typed events as JSON lines.

Run only under ``umockdev-wrapper`` (its LD_PRELOAD redirects /sys and the udev netlink
socket into the testbed); the tests start it in a subprocess so the rest of the suite keeps
the real /sys::

    umockdev-wrapper .venv/bin/python tests/harness/umockdev_run.py SCENARIO [ARG]

Scenarios: ``hotplug`` (threaded watcher), ``hotplug-async`` (asyncio watcher), ``enumerate``,
``replay FILE`` (a umockdev-record text), ``loop-line`` (loop-backed simulated bench).
Each output line is ``{"phase": ..., **event.to_dict()}``. Exit status 3: not under the wrapper;
4: a uevent never arrived.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import gi

gi.require_version("UMockdev", "1.0")
import pyudev  # noqa: E402
from gi.repository import UMockdev  # noqa: E402

from hardware_drivers.events import UdevEvent  # noqa: E402
from hardware_drivers.udev import (  # noqa: E402
    AsyncUdevWatcher,
    UdevFilter,
    UdevWatcher,
    enumerate_present,
)

DOCK_PATH = "pci-0000:00:14.0-usb-0:2.1"
DISK_PATH = f"{DOCK_PATH}:1.0-scsi-0:0:0:0"
SENTINEL_SERIAL = "umockdev-run-sentinel"
DOCK_SERIAL = "DOCK0001"
DISK_SERIAL = "S6PNNS0T123456A"
DISK_SECTORS = 488_397_168  # a 250 GB SSD
EVENT_WAIT_S = 5.0


def emit(phase: str, events: Iterable[UdevEvent]) -> None:
    for event in events:
        if event.serial != SENTINEL_SERIAL:
            print(json.dumps({"phase": phase, **event.to_dict()}), flush=True)


def flat(pairs: dict[str, str]) -> list[str]:
    return [item for kv in pairs.items() for item in kv]


class Bench:
    """A testbed with helpers for the devices a bench sees: a USB-SATA dock and its disk."""

    def __init__(self) -> None:
        self.tb = UMockdev.Testbed.new()
        self._sentinels = 0

    def add(self, subsystem: str, name: str, parent: str | None, attrs: dict[str, str], props: dict[str, str]) -> str:
        path = self.tb.add_device(subsystem, name, parent, flat(attrs), flat(props))
        if path is None:
            raise RuntimeError(f"umockdev refused to add {subsystem} device {name}")
        return path

    def dock(self, name: str = "2-2.1", serial: str = DOCK_SERIAL, id_path: str = DOCK_PATH) -> str:
        return self.add(
            "usb",
            name,
            None,
            {"idVendor": "152d", "idProduct": "0578", "serial": serial},
            {
                "DEVTYPE": "usb_device",
                "DEVNAME": "/dev/bus/usb/002/004",
                "ID_SERIAL": f"JMicron_USB_to_ATA_ATAPI_Bridge_{serial}",
                "ID_SERIAL_SHORT": serial,
                "ID_VENDOR": "JMicron",
                "ID_MODEL": "USB_to_ATA_ATAPI_Bridge",
                "ID_PATH": id_path,
            },
        )

    def interface(self, dock: str, name: str = "2-2.1:1.0") -> str:
        return self.add("usb", name, dock, {"bInterfaceClass": "08"}, {"DEVTYPE": "usb_interface"})

    def disk(
        self,
        name: str,
        parent: str | None,
        serial: str,
        sectors: int,
        id_path: str | None = DISK_PATH,
        bench_port: str | None = None,
    ) -> str:
        props = {
            "DEVNAME": f"/dev/{name}",
            "DEVTYPE": "disk",
            "ID_SERIAL": f"Samsung_SSD_870_EVO_{serial}",
            "ID_SERIAL_SHORT": serial,
            "ID_VENDOR": "Samsung",
            "ID_MODEL": "SSD_870_EVO_250GB",
        }
        if id_path:
            props["ID_PATH"] = id_path
        if bench_port:
            props["FACTORY_BENCH_PORT"] = bench_port
        return self.add("block", name, parent, {"size": str(sectors)}, props)

    def partition(self, disk: str, name: str, sectors: int) -> str:
        return self.add(
            "block",
            name,
            disk,
            {"size": str(sectors), "partition": "1"},
            {"DEVNAME": f"/dev/{name}", "DEVTYPE": "partition"},
        )

    def unplug(self, path: str) -> None:
        # remove_device() deletes the sysfs entry silently; the kernel would announce it.
        self.tb.uevent(path, "remove")
        self.tb.remove_device(path)

    def sentinel(self) -> None:
        """A last uevent: netlink keeps order, so once it arrives every earlier one has too."""
        self._sentinels += 1
        name = f"zz-sentinel{self._sentinels}"
        self.add("block", name, None, {}, {"DEVTYPE": "disk", "ID_SERIAL_SHORT": SENTINEL_SERIAL})


Expect = tuple[str, str] | None  # (action, serial) a step must produce before the next one


def hotplug_steps(bench: Bench) -> Iterator[Expect]:
    """Plug a dock and its disk, change the disk, unplug both.

    Each step yields the event it must produce (or None): the driver waits for it before the
    next step, so a disk's size is read while the disk still exists, as on a real bench.
    """
    dock = bench.dock()
    yield ("add", DOCK_SERIAL)
    disk = bench.disk("sdb", bench.interface(dock), DISK_SERIAL, DISK_SECTORS, bench_port="B1-S1")
    yield ("add", DISK_SERIAL)
    bench.partition(disk, "sdb1", 1_048_576)  # filtered: partition
    bench.disk("loop0", None, "LOOPBACK", 131_072, id_path=None)  # filtered: host plumbing
    yield None
    bench.tb.uevent(disk, "change")
    yield ("change", DISK_SERIAL)
    bench.tb.uevent(disk, "bind")  # ignored action
    bench.unplug(disk)
    yield ("remove", DISK_SERIAL)
    bench.unplug(dock)
    yield ("remove", DOCK_SERIAL)
    bench.sentinel()
    yield ("add", SENTINEL_SERIAL)


class Collector:
    """Events in arrival order, with a way to wait for a particular one."""

    def __init__(self) -> None:
        self.events: list[UdevEvent] = []
        self._changed = threading.Condition()

    def __call__(self, event: UdevEvent) -> None:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def seen(self, expect: Expect) -> bool:
        return expect is None or any((e.action, e.serial) == expect for e in self.events)

    def wait(self, expect: Expect) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: self.seen(expect), EVENT_WAIT_S):
                print(f"event {expect} never arrived", file=sys.stderr)
                raise SystemExit(4)


def watch_threaded(context: pyudev.Context, device_filter: UdevFilter, steps: Iterable[Expect]) -> list[UdevEvent]:
    collector = Collector()
    with UdevWatcher(context, collector, device_filter):
        for expect in steps:
            collector.wait(expect)
    return collector.events


def scenario_hotplug() -> None:
    emit("monitor", watch_threaded(pyudev.Context(), UdevFilter(), hotplug_steps(Bench())))


async def scenario_hotplug_async() -> None:
    collector = Collector()
    bench = Bench()  # the testbed must exist before the netlink socket is opened
    async with AsyncUdevWatcher(pyudev.Context()) as watcher:

        async def consume() -> None:
            async for event in watcher:
                collector(event)

        consumer = asyncio.create_task(consume())
        async with asyncio.timeout(EVENT_WAIT_S * 4):
            for expect in hotplug_steps(bench):
                while not collector.seen(expect):
                    await asyncio.sleep(0.01)
        watcher.stop()
        await consumer  # iteration ends once the watcher stops
    emit("monitor", collector.events)


def scenario_enumerate() -> None:
    bench = Bench()
    dock = bench.dock()
    disk = bench.disk("sdb", bench.interface(dock), DISK_SERIAL, DISK_SECTORS, bench_port="B1-S1")
    bench.partition(disk, "sdb1", 1_048_576)
    bench.disk("nvme0n1", None, "NVME0001", 1_000_215_216, id_path="pci-0000:3b:00.0-nvme-1")
    bench.disk("ram0", None, "RAM", 8192, id_path=None)
    context = pyudev.Context()
    emit("default", enumerate_present(context))
    emit("block-only", enumerate_present(context, subsystems=("block",)))
    emit("partitions", enumerate_present(context, device_filter=UdevFilter(include_partitions=True)))


def scenario_replay(record_file: str) -> None:
    bench, context = Bench(), pyudev.Context()
    text = Path(record_file).read_text()

    def plug_in() -> Iterator[Expect]:
        if not bench.tb.add_from_string(text):
            raise RuntimeError(f"umockdev could not parse {record_file}")
        bench.sentinel()
        yield ("add", SENTINEL_SERIAL)

    emit("monitor", watch_threaded(context, UdevFilter(), plug_in()))
    emit("present", enumerate_present(context))
    disks = [e.sys_path for e in enumerate_present(context, subsystems=("block",))]

    def pull_out() -> Iterator[Expect]:
        for path in disks:
            bench.tb.uevent(path, "remove")
        bench.sentinel()
        yield ("add", SENTINEL_SERIAL)

    emit("unplug", watch_threaded(context, UdevFilter(), pull_out()))


def scenario_loop_line() -> None:
    """The simulated line backs bench disks with loop devices: a filter that allows them."""
    bench, context = Bench(), pyudev.Context()
    line_filter = UdevFilter(subsystems=("block",), ignored_name_prefixes=("ram", "dm-", "zram"))

    def act() -> Iterator[Expect]:
        bench.disk("loop3", None, "SIMDISK3", 131_072, id_path=None, bench_port="SIM-S3")
        yield ("add", "SIMDISK3")
        bench.disk("ram1", None, "RAM", 8192, id_path=None)
        bench.sentinel()
        yield ("add", SENTINEL_SERIAL)

    emit("line", watch_threaded(context, line_filter, act()))
    emit("line-present", enumerate_present(context, device_filter=line_filter))
    emit("default-present", enumerate_present(context))


def main(argv: Sequence[str]) -> int:
    if "libumockdev-preload" not in os.environ.get("LD_PRELOAD", ""):
        print("umockdev_run.py must run under umockdev-wrapper", file=sys.stderr)
        return 3
    scenario, *args = argv
    if scenario == "hotplug":
        scenario_hotplug()
    elif scenario == "hotplug-async":
        asyncio.run(scenario_hotplug_async())
    elif scenario == "enumerate":
        scenario_enumerate()
    elif scenario == "replay":
        scenario_replay(args[0])
    elif scenario == "loop-line":
        scenario_loop_line()
    else:
        print(f"unknown scenario {scenario!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
