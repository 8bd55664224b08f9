"""udev adapter: turn what pyudev sees into the typed events of :mod:`hardware_drivers.events`.

Two entry points:

* :func:`enumerate_present` lists what is already plugged in at start-up (udev only reports
  changes, so without it a disk inserted before the service started would never be seen);
* :class:`UdevWatcher` (callback on a thread) and :class:`AsyncUdevWatcher` (``async for``)
  report ``add``/``remove``/``change`` uevents afterwards.

Both watchers start the netlink monitor before ``start()`` returns: a uevent emitted after
``start()`` is never lost, even if the consumer is slow to begin reading.
"""

from __future__ import annotations

import asyncio
import logging
import os
import select
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import pyudev

from hardware_drivers.events import (
    DeviceAttached,
    DeviceChanged,
    DeviceDetached,
    Subsystem,
    UdevEvent,
)

log = logging.getLogger(__name__)

_EVENT_BY_ACTION: Mapping[str, type[UdevEvent]] = {
    "add": DeviceAttached,
    "remove": DeviceDetached,
    "change": DeviceChanged,
}
_SECTOR_BYTES = 512  # sysfs "size" is always in 512-byte units, whatever the logical block size
_RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024  # a rack of docks powering up at once floods netlink


@dataclass(frozen=True, slots=True)
class UdevFilter:
    """Which devices become events.

    Defaults suit a production bench: whole disks and USB devices only; loop, RAM, device-mapper
    and zram block devices are the host's own plumbing. The simulated line backs its "disks"
    with loop devices, so it passes ``ignored_name_prefixes`` without ``"loop"``.
    """

    subsystems: tuple[Subsystem, ...] = ("block", "usb")
    include_partitions: bool = False
    ignored_name_prefixes: tuple[str, ...] = ("loop", "ram", "dm-", "zram", "nbd")
    # USB interfaces and hubs' ports also emit uevents; the controller cares about devices.
    usb_devtypes: tuple[str, ...] = ("usb_device",)
    bench_port_property: str = "FACTORY_BENCH_PORT"

    def accepts(self, device: pyudev.Device) -> bool:
        subsystem = device.subsystem
        if subsystem not in self.subsystems:
            return False
        if subsystem == "usb":
            return device.device_type in self.usb_devtypes
        if subsystem == "block":
            if device.device_type == "partition" and not self.include_partitions:
                return False
            return not device.sys_name.startswith(self.ignored_name_prefixes)
        return True


DEFAULT_FILTER = UdevFilter()


def event_from_device(
    device: pyudev.Device, action: str, device_filter: UdevFilter = DEFAULT_FILTER
) -> UdevEvent | None:
    """The typed event for ``device`` and a uevent ``action``; ``None`` if filtered out.

    Actions other than add/remove/change (bind, unbind, move, online, offline) carry nothing
    the controller acts on and are dropped.
    """
    event_type = _EVENT_BY_ACTION.get(action)
    if event_type is None or not device_filter.accepts(device):
        return None
    props = device.properties
    subsystem: Subsystem = "block" if device.subsystem == "block" else "usb"
    return event_type(
        subsystem=subsystem,
        sys_path=device.sys_path,
        device_node=device.device_node or props.get("DEVNAME"),
        devtype=device.device_type,
        serial=_serial(props),
        vendor=_first(props, "ID_VENDOR", "ID_VENDOR_FROM_DATABASE"),
        model=_first(props, "ID_MODEL", "ID_MODEL_FROM_DATABASE"),
        id_path=props.get("ID_PATH") or None,
        bench_port=props.get(device_filter.bench_port_property) or None,
        size_bytes=_size_bytes(device) if subsystem == "block" and action != "remove" else None,
        vendor_id=props.get("ID_VENDOR_ID") or None,
        product_id=props.get("ID_MODEL_ID") or None,
        usb_interfaces=props.get("ID_USB_INTERFACES") or None,
    )


def enumerate_present(
    context: pyudev.Context,
    subsystems: Sequence[Subsystem] | None = None,
    device_filter: UdevFilter = DEFAULT_FILTER,
) -> list[UdevEvent]:
    """``DeviceAttached`` for every matching device present now, ordered by sysfs path.

    Ordering by path puts a dock before the disks behind it. ``subsystems`` narrows the
    filter's own list.
    """
    wanted = tuple(subsystems) if subsystems is not None else device_filter.subsystems
    events: list[UdevEvent] = []
    for subsystem in wanted:
        for device in context.list_devices(subsystem=subsystem):
            event = event_from_device(device, "add", device_filter)
            if event is not None:
                events.append(event)
    return sorted(events, key=lambda e: e.sys_path)


def _serial(props: Mapping[str, str]) -> str | None:
    """The serial that names this one device, or ``None`` when udev's names no one device.

    ``ID_SERIAL_SHORT`` is the bare serial. Without it, udev's ``ID_SERIAL`` for a USB device is only
    vendor_model (every unit of the model alike), so it is used only off USB (virtio, MMC). Behind a
    USB bridge the serial is the bridge's: a firmware default (see :func:`shared_usb_serial`), or one
    serial for every disk of a multi-bay bridge (LUN 1 and up are told by ``ID_INSTANCE``), is no one's.
    """
    on_usb = props.get("ID_BUS") == "usb"
    serial = props.get("ID_SERIAL_SHORT") or (None if on_usb else props.get("ID_SERIAL")) or None
    if serial is None or not on_usb:
        return serial
    lun = props.get("ID_INSTANCE", "0:0").rpartition(":")[2]
    if shared_usb_serial(serial, props.get("ID_VENDOR_ID"), props.get("ID_MODEL_ID")) or lun not in ("", "0"):
        return None
    return serial


# Bridge defaults seen on many units that fit none of the patterns below (tests/fixtures/udev/VARIANTS.md).
_KNOWN_SHARED_USB_SERIALS = frozenset({"20170331000C3"})


def shared_usb_serial(serial: str, vendor_id: str | None = None, product_id: str | None = None) -> bool:
    """A USB serial that bridges and cheap devices ship with, the same on every unit: one character
    repeated, a counting sequence (``0123456789ABCDEF``, ``012345678901``, ``123456...``), eight or
    more leading zeros before a short tail, or one made of the device's own vendor id followed by
    its product id or ``00`` (``<vid>00539000``, ``<vid><pid>6485``)."""
    text = serial.strip().upper()
    if len(set(text)) <= 1 or text.startswith(("0123456", "123456")) or text in _KNOWN_SHARED_USB_SERIALS:
        return True
    if len(text) >= 12 and text.startswith("0" * 8):
        return True
    vid, pid = (vendor_id or "").upper(), (product_id or "").upper()
    return len(vid) == 4 and text.startswith((vid + "00", vid + pid) if len(pid) == 4 else (vid + "00",))


def _first(props: Mapping[str, str], *keys: str) -> str | None:
    for key in keys:
        value = props.get(key)
        if value:
            return value
    return None


def _size_bytes(device: pyudev.Device) -> int | None:
    try:
        return device.attributes.asint("size") * _SECTOR_BYTES
    except (KeyError, ValueError, OSError, UnicodeDecodeError):
        # The device vanished between the uevent and this read, or sysfs had no size.
        return None


def _open_monitor(context: pyudev.Context, device_filter: UdevFilter) -> pyudev.Monitor:
    monitor = pyudev.Monitor.from_netlink(context)
    for subsystem in device_filter.subsystems:
        monitor.filter_by(subsystem)
    try:
        monitor.set_receive_buffer_size(_RECEIVE_BUFFER_BYTES)
    except OSError as exc:  # needs CAP_NET_ADMIN beyond rmem_max; the default still works
        log.debug("udev receive buffer left at default: %s", exc)
    monitor.start()
    return monitor


def _drain(monitor: pyudev.Monitor, device_filter: UdevFilter) -> Iterable[UdevEvent]:
    """Every event already queued on the monitor's socket, without blocking."""
    while True:
        device = monitor.poll(timeout=0)
        if device is None:
            return
        event = event_from_device(device, device.action or "", device_filter)
        if event is not None:
            yield event


class UdevWatcher:
    """Deliver udev events to ``callback`` from a background thread.

    The callback runs on the watcher thread; an exception in it is logged and the watcher
    carries on (one bad event must not blind the bench).
    """

    def __init__(
        self,
        context: pyudev.Context,
        callback: Callable[[UdevEvent], None],
        device_filter: UdevFilter = DEFAULT_FILTER,
    ) -> None:
        self._context = context
        self._callback = callback
        self._filter = device_filter
        self._monitor: pyudev.Monitor | None = None
        self._thread: threading.Thread | None = None
        self._wake_r: int | None = None
        self._wake_w: int | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start listening; every uevent from now on is delivered."""
        if self._thread is not None:
            raise RuntimeError("UdevWatcher already started")
        self._monitor = _open_monitor(self._context, self._filter)
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="udev-watcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and close the netlink socket; idempotent."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        assert self._wake_w is not None
        os.write(self._wake_w, b"x")
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError(f"udev watcher thread did not stop within {timeout} s")
        for fd in (self._wake_r, self._wake_w):
            if fd is not None:
                os.close(fd)
        self._wake_r = self._wake_w = None
        self._monitor = None  # pyudev closes the socket when the monitor is collected

    def _run(self) -> None:
        try:
            self._loop()
        except Exception:
            # Leaves ``running`` False for the controller's health check to notice.
            log.exception("udev watcher stopped on an unexpected error")

    def _loop(self) -> None:
        assert self._monitor is not None and self._wake_r is not None
        poller = select.poll()
        poller.register(self._monitor.fileno(), select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        while True:
            ready = {fd for fd, _ in poller.poll()}
            if self._wake_r in ready:
                return
            for event in _drain(self._monitor, self._filter):
                try:
                    self._callback(event)
                except Exception:
                    log.exception("udev event callback failed for %s", event)

    def __enter__(self) -> UdevWatcher:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class AsyncUdevWatcher:
    """udev events as an async iterator, read on the event loop (no thread).

    ``async with AsyncUdevWatcher(context) as watcher: async for event in watcher: ...``;
    iteration ends after :meth:`stop`.
    """

    def __init__(self, context: pyudev.Context, device_filter: UdevFilter = DEFAULT_FILTER) -> None:
        self._context = context
        self._filter = device_filter
        self._monitor: pyudev.Monitor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[UdevEvent | None] = asyncio.Queue()

    def start(self) -> None:
        """Start listening; must be called from the running event loop."""
        if self._monitor is not None:
            raise RuntimeError("AsyncUdevWatcher already started")
        self._loop = asyncio.get_running_loop()
        self._monitor = _open_monitor(self._context, self._filter)
        self._loop.add_reader(self._monitor.fileno(), self._on_readable)

    def stop(self) -> None:
        """Stop listening and end iteration; idempotent."""
        monitor, self._monitor = self._monitor, None
        if monitor is None or self._loop is None:
            return
        self._loop.remove_reader(monitor.fileno())
        self._queue.put_nowait(None)

    def _on_readable(self) -> None:
        assert self._monitor is not None
        for event in _drain(self._monitor, self._filter):
            self._queue.put_nowait(event)

    def __aiter__(self) -> AsyncIterator[UdevEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[UdevEvent]:
        while (event := await self._queue.get()) is not None:
            yield event

    async def __aenter__(self) -> AsyncUdevWatcher:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.stop()
