"""Hand-made udev events for controller and port-map tests (no udev, no disks)."""

from __future__ import annotations

from hardware_drivers.events import DeviceAttached


def attached_disk(
    serial: str,
    id_path: str | None,
    *,
    bench_port: str | None = None,
    sys_path: str = "/sys/devices/x/sdb",
    device_node: str = "/dev/sdb",
    size_bytes: int | None = None,
) -> DeviceAttached:
    """A whole disk (``devtype=disk``) with no vendor or model, seen at ``id_path``/``bench_port``."""
    return DeviceAttached(
        subsystem="block",
        sys_path=sys_path,
        device_node=device_node,
        devtype="disk",
        serial=serial,
        vendor=None,
        model=None,
        id_path=id_path,
        bench_port=bench_port,
        size_bytes=size_bytes,
    )
