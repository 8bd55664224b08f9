"""Typed events and errors the hardware adapters hand to the controller.

Everything here is a frozen dataclass or a small exception class with no behaviour beyond
formatting, so the controller can pattern-match on types and store events verbatim.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal

Subsystem = Literal["block", "usb"]


@dataclass(frozen=True, slots=True)
class UdevEvent:
    """A device seen by udev: the fields the controller needs to identify and place it.

    ``serial`` prefers ``ID_SERIAL_SHORT`` (the bare serial number) over ``ID_SERIAL``
    (vendor_model_serial). ``size_bytes`` is known only for block devices that are present
    (a removed device has no sysfs attributes left to read).
    """

    action: ClassVar[str] = "present"

    subsystem: Subsystem
    sys_path: str
    device_node: str | None
    devtype: str | None
    serial: str | None
    vendor: str | None
    model: str | None
    id_path: str | None
    bench_port: str | None
    size_bytes: int | None
    # USB devices: udev's ID_VENDOR_ID, ID_MODEL_ID and ID_USB_INTERFACES (tablets are told by them).
    vendor_id: str | None = None
    product_id: str | None = None
    usb_interfaces: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form, with the action and the event type name."""
        return {"event": type(self).__name__, "action": self.action, **asdict(self)}


@dataclass(frozen=True, slots=True)
class DeviceAttached(UdevEvent):
    """A device was plugged in, or was already present when enumeration ran."""

    action: ClassVar[str] = "add"


@dataclass(frozen=True, slots=True)
class DeviceDetached(UdevEvent):
    """A device went away (pulled, or its dock lost power)."""

    action: ClassVar[str] = "remove"


@dataclass(frozen=True, slots=True)
class DeviceChanged(UdevEvent):
    """udev re-read a device: media change, resize, new partition table."""

    action: ClassVar[str] = "change"


@dataclass(frozen=True, slots=True)
class LinkEvent:
    """A switch port changed state, reported by an SNMP trap or seen between two polls."""

    switch: str
    if_index: int
    if_name: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"event": type(self).__name__, **asdict(self)}


@dataclass(frozen=True, slots=True)
class LinkUp(LinkEvent):
    """linkUp trap (1.3.6.1.6.3.1.1.5.4)."""


@dataclass(frozen=True, slots=True)
class LinkDown(LinkEvent):
    """linkDown trap (1.3.6.1.6.3.1.1.5.3)."""


@dataclass(frozen=True, slots=True)
class MacSeen:
    """A MAC address in a switch forwarding table.

    ``bridge_port`` is the BRIDGE-MIB port number; ``if_index``/``if_name`` are ``None`` when
    the switch does not map that bridge port to an interface. ``vlan`` is ``None`` when the
    entry came from the VLAN-unaware BRIDGE-MIB table only.
    """

    switch: str
    mac: str
    bridge_port: int
    if_index: int | None
    if_name: str | None
    vlan: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"event": type(self).__name__, **asdict(self)}


@dataclass(frozen=True, slots=True)
class MacGone:
    """A MAC address left a switch port's forwarding table (unplugged, aged out, or moved).

    Reported by the poller when consecutive polls differ; the fields are those of the last
    :class:`MacSeen` for that MAC on that port.
    """

    switch: str
    mac: str
    bridge_port: int
    if_index: int | None
    if_name: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"event": type(self).__name__, **asdict(self)}


class DriverError(Exception):
    """A hardware adapter could not do its job; ``reason`` is one line for an operator."""

    def __init__(self, switch: str, reason: str) -> None:
        self.switch = switch
        self.reason = " ".join(reason.split())
        super().__init__(f"{switch}: {self.reason}")


class SnmpTimeout(DriverError):
    """The switch did not answer within timeout x (retries + 1)."""


class SwitchUnreachable(DriverError):
    """The switch address cannot be resolved or has no route: nothing was sent."""


class MalformedReply(DriverError):
    """The switch answered with something that does not fit the MIB (type, index, ordering)."""


class SnmpAgentError(DriverError):
    """The agent answered with an SNMP error-status (e.g. genErr, authorizationError)."""


_FAILING: dict[type[DriverError], str] = {
    SnmpTimeout: "is not answering",
    SwitchUnreachable: "is unreachable",
    MalformedReply: "sent a malformed reply",
    SnmpAgentError: "reported an SNMP error",
}


def failing(error: DriverError) -> str:
    """What a switch that raised ``error`` does, in words for an operator ("switch sw-1 is unreachable")."""
    return _FAILING.get(type(error), "failed")
