"""Site port map: udev port identities and switch ports to bench slots."""

from __future__ import annotations

from typing import Any

import pytest
from harness.udev_events import attached_disk

from hardware_drivers.events import DeviceAttached, LinkUp
from hardware_drivers.port_map import PortMap, PortMapError

SITE: dict[str, Any] = {
    "udev": [
        {"bench_port": "B1-S4", "slot": "bench-1/slot-4"},
        {"id_path": "pci-0000:00:14.0-usb-0:2.1:1.0-scsi-0:0:0:0", "slot": "bench-1/slot-1"},
        {"id_path_prefix": "pci-0000:00:14.0-usb-0:2.2:", "slot": "bench-1/slot-2"},
        {"id_path_glob": "pci-0000:00:14.0-usb-0:3.*-scsi-*", "slot": "bench-1/slot-3"},
        {"id_path_prefix": "pci-0000:00:14.0-usb-0:", "slot": "bench-1/intake"},
    ],
    "switch_ports": [
        {"switch": "sw-bench-1", "if_name": "Gi1/0/1", "slot": "bench-1/slot-1"},
        {"switch": "sw-bench-2", "if_name": "Gi2/0/3", "slot": "bench-2/slot-3"},
    ],
}


def disk(id_path: str | None, bench_port: str | None = None) -> DeviceAttached:
    return attached_disk("S1", id_path, bench_port=bench_port)


@pytest.mark.parametrize(
    ("id_path", "bench_port", "slot"),
    [
        ("pci-0000:00:14.0-usb-0:2.1:1.0-scsi-0:0:0:0", None, "bench-1/slot-1"),  # exact
        ("pci-0000:00:14.0-usb-0:2.2:1.0-scsi-0:0:0:0", None, "bench-1/slot-2"),  # prefix
        ("pci-0000:00:14.0-usb-0:3.4:1.0-scsi-0:0:0:0", None, "bench-1/slot-3"),  # glob
        ("pci-0000:00:14.0-usb-0:4:1.0-scsi-0:0:0:0", None, "bench-1/intake"),  # later, broader prefix
        ("pci-0000:00:14.0-usb-0:2.1:1.0-scsi-0:0:0:0", "B1-S4", "bench-1/slot-4"),  # label beats path
        ("pci-0000:00:14.0-usb-0:2.1:1.0-scsi-0:0:0:0", "B9-S9", "bench-1/slot-1"),  # unknown label
        ("pci-0000:3b:00.0-nvme-1", None, None),  # not wired to any slot
        (None, None, None),
    ],
)
def test_udev_lookup_order(id_path: str | None, bench_port: str | None, slot: str | None) -> None:
    assert PortMap.from_dict(SITE).slot_for_device(disk(id_path, bench_port)) == slot


def test_switch_ports_both_ways() -> None:
    ports = PortMap.from_dict(SITE)
    assert ports.slot_for_switch_port("sw-bench-2", "Gi2/0/3") == "bench-2/slot-3"
    assert ports.slot_for_switch_port("sw-bench-1", "Gi2/0/3") is None  # same name, other switch
    link = LinkUp(switch="sw-bench-1", if_index=1, if_name=None)
    assert ports.slot_for_switch_port(link.switch, link.if_name) is None  # trap without a name
    assert ports.switch_port_for_slot("bench-1/slot-1") == ("sw-bench-1", "Gi1/0/1")
    assert ports.switch_port_for_slot("bench-9/slot-9") is None


def test_empty_config_maps_nothing() -> None:
    ports = PortMap.from_dict({})
    assert ports.slot_for_udev("pci-0000:00:14.0-usb-0:2.1", "B1-S1") is None


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"udev": [{"slot": "bench-1/slot-1"}]}, "needs exactly one of"),
        ({"udev": [{"id_path": "a", "bench_port": "b", "slot": "s"}]}, "needs exactly one of"),
        ({"udev": [{"id_path": "a"}]}, "udev[0].slot: must be a non-empty string"),
        ({"udev": [{"id_path": "", "slot": "s"}]}, "udev[0].id_path: must be a non-empty string"),
        (
            {"udev": [{"id_path": "a", "slot": "s1"}, {"id_path": "a", "slot": "s2"}]},
            "udev[1]: id_path 'a' is mapped to both 's1' and 's2'",
        ),
        (
            {
                "switch_ports": [
                    {"switch": "sw", "if_name": "Gi1", "slot": "s1"},
                    {"switch": "sw", "if_name": "Gi1", "slot": "s2"},
                ]
            },
            "switch_ports[1]: sw Gi1 is mapped to both",
        ),
        ({"switch_ports": [{"switch": "sw", "slot": "s1"}]}, "needs exactly 'switch', 'if_name' and 'slot'"),
        ({"udev": {"id_path": "a", "slot": "s"}}, "'udev' must be a list of tables"),
        ({"udevs": []}, "unknown port map section(s): udevs"),
    ],
)
def test_bad_config_is_rejected_with_a_reason(config: dict[str, Any], message: str) -> None:
    with pytest.raises(PortMapError) as excinfo:
        PortMap.from_dict(config)
    assert message in str(excinfo.value)
